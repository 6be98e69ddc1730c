"""The deferred "thinking" message of a clone job, edited as the job moves, and how its outcome is posted.

    progress = JobProgress(interaction)
    await progress.start()                       # defer within Discord's 3 s window
    job = await service.submit(..., on_progress=progress.on_job)
    ...
    await progress.post(embed=..., file=...)     # public follow-up with the audio
    await progress.finish(job.describe())        # "Job J7K2QX: done in 8.1 s"
    await progress.fail(message)                 # or: delete the public message, tell the user ephemerally

Edits are serialised and deduplicated; once the outcome is posted, late progress callbacks are ignored.
Interaction tokens last 15 minutes: a job that waited longer is answered in the channel, mentioning the user.
"""

from __future__ import annotations

import asyncio

import discord
import structlog

from commands.jobs import Job

log = structlog.get_logger(__name__)


class JobProgress:
    """One interaction's public progress message and the outcome posted under it."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self._lock = asyncio.Lock()
        self._shown: str | None = None
        self._closed = False

    async def start(self, text: str = "Fetching the reference clip…") -> None:
        """Defer (public "thinking"), then replace the placeholder so follow-ups become separate messages."""
        await self.interaction.response.defer(thinking=True)
        await self.show(text)

    async def show(self, text: str) -> None:
        async with self._lock:
            if self._closed or text == self._shown:
                return
            await self._edit(text)

    async def on_job(self, job: Job) -> None:
        """The job queue's progress callback: "Job J7K2QX: queued, position 2 of 3", "…: generating speech…"."""
        if not job.finished:  # the outcome is posted by `post` / `fail`, not by a late callback
            await self.show(job.describe())

    async def post(self, **message: object) -> None:
        """Post the result publicly as a follow-up; progress callbacks arriving later are ignored."""
        async with self._lock:
            self._closed = True
            if self.interaction.is_expired():
                await self._channel_send(**message)
            else:
                await self.interaction.followup.send(**message)  # type: ignore[arg-type]

    async def finish(self, text: str) -> None:
        """The progress message's last words ("Job J7K2QX: done in 8.1 s")."""
        async with self._lock:
            self._closed = True
            await self._edit(text)

    async def fail(self, text: str) -> None:
        """Tell only the user what went wrong; the public progress message goes away."""
        async with self._lock:
            self._closed = True
            if self.interaction.is_expired():
                await self._channel_send(content=text)
                return
            try:
                await self.interaction.delete_original_response()
            except discord.HTTPException as exc:
                log.warning("discord.progress_delete_failed", status=exc.status, code=exc.code)
            await self.interaction.followup.send(text, ephemeral=True)

    async def _edit(self, text: str) -> None:
        if self.interaction.is_expired():
            return
        try:
            await self.interaction.edit_original_response(content=text)
            self._shown = text
        except discord.HTTPException as exc:  # progress is best effort: the job goes on
            log.warning("discord.progress_edit_failed", status=exc.status, code=exc.code, text=text)

    async def _channel_send(self, **message: object) -> None:
        """After the token expired: a normal channel message that mentions the user."""
        channel = self.interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            log.warning("discord.result_undeliverable", channel_id=self.interaction.channel_id)
            return
        content = f"{self.interaction.user.mention} {message.pop('content', '') or ''}".strip()
        await channel.send(content=content, allowed_mentions=discord.AllowedMentions(
            everyone=False, roles=False, users=[self.interaction.user]), **message)  # type: ignore[arg-type]
