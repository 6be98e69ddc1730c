"""One clone job seen from Slack: fetch the clip, submit it, keep a progress message current, upload the WAV.

    flow = CloneFlow(services, client, order, reply)
    admission = flow.admit()        # download + CloneService.submit; raises when refused (shown on the form)
    await flow.run()                # progress message -> result WAV in the thread (or the failure, privately)

The progress message goes where the request was made: into the channel for `/clone` (the WAV then goes into
its thread), into the message's thread for the shortcut and mentions. Validation, queueing and the timing
report are `commands`' own; nothing here decides what is a valid clip or how long anyone waits.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from backend.errors import VoicebotError
from bot.slack.files import download_private, resolve
from bot.slack.messages import UNEXPECTED, escape, progress_text, result_comment, user_text
from bot.slack.replies import Replier
from bot.slack.services import SlackServices
from bot.slack.slack_errors import explain
from commands.errors import UnexpectedJobError
from commands.health import is_admin
from commands.jobs import Job
from commands.timing import excerpt, result_filename

log = structlog.get_logger(__name__)


@dataclass
class CloneOrder:
    """What a Slack user asked for, and where."""

    user: str  # Slack user id (U…)
    team: str
    channel: str
    thread_ts: str | None  # None: a new message in the channel, the result in its thread
    file: dict[str, Any]  # Slack file object of the reference clip
    text: str
    ref_text: str | None = None
    language: str | None = None
    variant: str | None = None

    @property
    def user_key(self) -> str:
        return f"slack:{self.user}"

    @property
    def place(self) -> str:
        return f"slack:{self.team}/{self.channel}"


class ProgressMessage:
    """The public "queued #2 -> cloning -> generating -> done" message; edits are serialised and deduplicated."""

    def __init__(self, client: AsyncWebClient, channel: str, thread_ts: str | None, user: str) -> None:
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        self.user = user
        self.ts: str | None = None
        self._shown: str | None = None
        self._closed = False
        self._lock = asyncio.Lock()

    async def start(self, job: Job) -> None:
        """Post the message (raises `SlackProblem` when Slack refuses: not in channel, missing scope)."""
        async with self._lock:
            text = progress_text(job, self.user)
            try:
                response = await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts,
                                                              text=text)
            except SlackClientError as exc:
                raise explain(exc, "post the progress message in this channel") from exc
            self.ts, self._shown = response["ts"], text
        await self.on_job(job)  # the job may have moved while the message was being posted

    async def on_job(self, job: Job) -> None:
        """The job queue's progress callback; the outcome itself is shown by `finish` / `fail`."""
        if not job.finished:
            await self._show(progress_text(job, self.user))

    async def finish(self, text: str) -> None:
        await self._show(text, last=True)

    async def fail(self, message: str, reply: Replier) -> None:
        """Tell the user privately and remove the public message; if Slack takes no private message, say it
        in the progress message instead."""
        if await reply.ephemeral(f":x: {message}"):
            async with self._lock:
                self._closed = True
                if self.ts is not None:
                    try:
                        await self.client.chat_delete(channel=self.channel, ts=self.ts)
                    except SlackClientError as exc:
                        log.warning("slack.progress_delete_failed", channel=self.channel, error=str(exc))
        else:
            await self._show(f":x: <@{self.user}> {escape(message)}", last=True)

    async def _show(self, text: str, *, last: bool = False) -> None:
        async with self._lock:
            if self._closed or self.ts is None or text == self._shown:
                return
            self._closed = last
            try:
                await self.client.chat_update(channel=self.channel, ts=self.ts, text=text)
                self._shown = text
            except SlackClientError as exc:  # a lost edit is not worth failing the job for
                log.warning("slack.progress_edit_failed", channel=self.channel, ts=self.ts, error=str(exc))


class CloneFlow:
    def __init__(self, services: SlackServices, client: AsyncWebClient, order: CloneOrder, reply: Replier) -> None:
        self.services = services
        self.client = client
        self.order = order
        self.reply = reply
        self.progress = ProgressMessage(client, order.channel, order.thread_ts, order.user)
        self._admission: asyncio.Task[Job] | None = None

    def admit(self) -> asyncio.Task[Job]:
        """Start (once) downloading the clip and submitting the job; the task raises `VoicebotError` when the
        request is refused, with the message for the user."""
        if self._admission is None:
            self._admission = asyncio.get_running_loop().create_task(self._submit(), name="slack-clone-admission")
        return self._admission

    async def _submit(self) -> Job:
        order, settings, clone = self.order, self.services.settings, self.services.clone
        admin = is_admin(order.user_key, False, settings)
        file = await resolve(self.client, order.file)  # by id: URLs in the payload are never used
        size = file.get("size")
        # Everything but the audio itself, before downloading it (Slack tells the file's size).
        clone.check_request(order.user_key, order.text, order.ref_text, order.language, order.variant,
                            reference_size=size if isinstance(size, int) else None, is_admin=admin)
        data = await download_private(file, self.services.bot_token, settings.audio_limits.max_bytes,
                                      origins=self.services.file_origins)
        return await clone.submit(
            order.user_key, order.place, data, file.get("name"), order.text, order.ref_text, order.language,
            order.variant, is_admin=admin, on_progress=self.progress.on_job,
        )

    async def run(self) -> None:
        """Admission (if not done yet), then the job to its end; every failure reaches the user."""
        job: Job | None = None
        try:
            try:
                job = await self.admit()
            except VoicebotError as exc:
                self.note(exc)
                await self.reply.ephemeral(f":x: {user_text(exc)}")
                return
            await self._deliver(job)
        except Exception:
            log.exception("slack.clone_flow_failed", job_id=job.id if job else None, user=self.order.user,
                          channel=self.order.channel)
            if job is not None and not job.finished:
                job.mark_failed(UnexpectedJobError("unexpected error; the admins have the log."))
            message = user_text(job.error) if job is not None and job.error is not None else UNEXPECTED
            await self.progress.fail(message, self.reply)

    async def _deliver(self, job: Job) -> None:
        try:
            await self.progress.start(job)
        except VoicebotError as exc:
            job.mark_failed(exc)  # nobody could see the result: free the slot
            self.note(exc)
            await self.reply.ephemeral(f":x: {user_text(job.error or exc)}")
            return
        try:
            result = await job.wait()
            async with job.delivering():
                await self._upload(job, result.audio)
        except VoicebotError as exc:
            self.note(exc)
            await self.progress.fail(user_text(job.error or exc), self.reply)
            return
        await self.progress.finish(progress_text(job, self.order.user))

    def note(self, error: VoicebotError) -> None:
        """The operator side of a failure this user is about to be shown (see `SlackServices.note`)."""
        self.services.note(error, user=self.order.user, channel=self.order.channel)

    async def _upload(self, job: Job, audio: bytes) -> None:
        thread = self.order.thread_ts or self.progress.ts
        try:
            await self.client.files_upload_v2(
                channel=self.order.channel, thread_ts=thread, file=audio, filename=result_filename(job.text),
                title=f"Voice clone: {excerpt(job.text, 60)}", initial_comment=result_comment(job, self.order.user),
            )
        except SlackClientError as exc:
            raise explain(exc, "upload the audio") from exc
