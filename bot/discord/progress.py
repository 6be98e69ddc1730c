"""The progress message of a clone job: always ends in a final state, whatever happens to the interaction token.

    progress = JobProgress(routes, timing)
    await progress.start()                         # defer within Discord's 3 s window, first edit
    job = await service.submit(..., on_progress=progress.on_job)
    ...
    await progress.finish("Job J7K2QX: done in 8.1 s")
    await progress.fail(message, public="Job J7K2QX: failed.")   # or: tell the user privately, then close

The message starts as the interaction's original response, edited through the webhook — which Discord allows
for 15 minutes only. So `handoff_s` before the token expires, a job still running moves its progress into a
message the bot owns (a channel message, else a DM), which it can edit for ever; the original response gets its
last words ("…progress continues in <link>"). If neither can be posted, the original says so while it still can,
and that the result will be kept for the admins if it cannot be delivered. Edits go through one
`commands.progress_coalescer.Coalescer` per message: at most one per `progress_interval_s`, the final state last.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import discord
import structlog

from bot.discord.calls import CALL_FAILURES, DiscordTiming, describe_failure, within
from bot.discord.routes import Route, Routes
from commands.jobs import Job
from commands.progress_coalescer import Coalescer

log = structlog.get_logger(__name__)
NO_MENTIONS = discord.AllowedMentions.none()


@dataclass
class _Surface:
    """One message showing the progress, and its coalescer. `public` messages are deleted when the user was told
    privately why the job failed; a private one (a DM) is edited to the reason itself."""

    route: Route
    edits: Coalescer[str]
    message: discord.Message | None = None  # None: the interaction's original response
    prefix: str = ""  # a channel message keeps the user's mention in front

    @property
    def private(self) -> bool:
        return self.route is Route.DM


class JobProgress:
    """One interaction's progress message, moved to a bot-owned message before the token expires."""

    def __init__(self, routes: Routes, timing: DiscordTiming) -> None:
        self.routes = routes
        self.timing = timing
        self.job_id: str | None = None
        self._surface: _Surface | None = None
        self._latest = ""
        self._lock = asyncio.Lock()  # the handoff and the outcome never interleave
        self._closed = False
        self._handoff: asyncio.Task[None] | None = None

    @property
    def interaction(self) -> discord.Interaction:
        return self.routes.interaction

    async def start(self, text: str = "Fetching the reference clip…") -> None:
        """Defer (public "thinking"), then replace the placeholder at once, so follow-ups become separate messages
        (a follow-up to an unedited deferral would replace it). Raises when Discord refuses the deferral."""
        await within(self.timing.call_s, self.interaction.response.defer(thinking=True))
        self._latest = text
        try:
            await self._edit_original(text)
        except CALL_FAILURES as exc:
            log.warning("discord.progress_edit_failed", reason=describe_failure(exc))
        loop = asyncio.get_running_loop()
        edits = Coalescer(self._edit_original, min_interval_s=self.timing.progress_interval_s, shown=text,
                          sent_at=loop.time())
        self._surface = _Surface(Route.FOLLOWUP, edits)
        self._handoff = loop.create_task(self._handoff_when_due(), name="discord-progress-handoff")

    def show(self, text: str) -> None:
        """The latest progress; shown when the interval allows, unless newer progress or the outcome comes first."""
        if self._closed:
            return
        self._latest = text
        if self._surface is not None:
            self._surface.edits.push(self._surface.prefix + text)

    def on_job(self, job: Job) -> None:
        """The job queue's progress callback: "Job J7K2QX: queued, position 2 of 3", "…: generating speech…"."""
        self.job_id = job.id
        if not job.finished:  # the outcome is shown by `finish` / `fail`, not by a late callback
            self.show(job.describe())

    async def finish(self, text: str) -> None:
        """The progress message's last words ("Job J7K2QX: done in 8.1 s")."""
        async with self._lock:
            self.close()
            if self._surface is not None and not await self._surface.edits.flush(self._surface.prefix + text):
                log.warning("discord.final_state_not_shown", route=self._surface.route.value, text=text)

    async def fail(self, message: str, *, public: str) -> None:
        """Tell the user privately what went wrong; the public progress message goes away. Where no private route
        works, the public message ends with `public` (no details: they are the user's)."""
        async with self._lock:
            self.close()
            surface = self._surface
            if surface is not None and surface.private:  # the DM progress message becomes the reason
                if await surface.edits.flush(message):
                    return
            told = await self.routes.tell_privately(message)
            if surface is None or surface.private:
                if told is None:
                    log.warning("discord.failure_not_delivered", error=message)
                return
            if told is None:
                await surface.edits.flush(surface.prefix + public)
                return
            await surface.edits.aclose()
            try:
                await self._delete(surface)
            except CALL_FAILURES as exc:  # the public message stays: say at least that it failed
                log.warning("discord.progress_delete_failed", reason=describe_failure(exc))
                try:
                    await self._edit(surface, surface.prefix + public)
                except CALL_FAILURES as exc:
                    log.warning("discord.final_state_not_shown", reason=describe_failure(exc), text=public)

    # -- the handoff ---------------------------------------------------------------------------------------
    async def _handoff_when_due(self) -> None:
        due = self.interaction.expires_at - discord.utils.utcnow()
        await asyncio.sleep(max(0.0, due.total_seconds() - self.timing.handoff_s))
        await self.handoff()

    async def handoff(self) -> None:
        """Move the progress into a message the bot owns, before the token stops allowing edits of the original."""
        async with self._lock:
            surface = self._surface
            if self._closed or surface is None or surface.message is not None:
                return
            posted = await self.routes.post_progress(self._latest)
            who = f"Job {self.job_id}" if self.job_id else "Your voice clone"
            if posted is None:
                self._surface = None
                note = (f"{who} is still running. Discord lets the bot update this reply for 15 minutes only, and the "
                        "bot can't post in this channel or send you a direct message"
                        + (f", so if the audio can't be delivered the admins keep it under job id {self.job_id}."
                           if self.job_id else "."))
            else:
                message, route = posted
                where = message.jump_url if route is Route.CHANNEL else "in your direct messages"
                note = (f"{who} is still running. Discord lets the bot update this reply for 15 minutes only, so the "
                        f"progress continues {where}.")
                prefix = f"{self.routes.user.mention} " if route is Route.CHANNEL else ""
                self._surface = _Surface(route, Coalescer(
                    lambda text: self._edit_message(message, text), min_interval_s=self.timing.progress_interval_s,
                    shown=prefix + self._latest, sent_at=asyncio.get_running_loop().time()), message, prefix)
            log.info("discord.progress_handed_off", job_id=self.job_id, to=posted[1].value if posted else None)
            if not await surface.edits.flush(note):
                log.warning("discord.final_state_not_shown", route=Route.FOLLOWUP.value, text=note)

    # -- edits -------------------------------------------------------------------------------------------
    def close(self) -> None:
        """No more progress: late callbacks are ignored and the pending handoff stops (idempotent)."""
        self._closed = True
        if self._handoff is not None and self._handoff is not asyncio.current_task():
            self._handoff.cancel()

    async def _edit_original(self, text: str) -> None:
        await self.routes.webhook(self.interaction.edit_original_response(content=text))

    async def _edit_message(self, message: discord.Message, text: str) -> None:
        await within(self.timing.call_s, message.edit(content=text, allowed_mentions=NO_MENTIONS))

    async def _edit(self, surface: _Surface, text: str) -> None:
        if surface.message is None:
            await self._edit_original(text)
        else:
            await self._edit_message(surface.message, text)

    async def _delete(self, surface: _Surface) -> None:
        if surface.message is None:
            await self.routes.webhook(self.interaction.delete_original_response())
        else:
            await within(self.timing.call_s, surface.message.delete())
