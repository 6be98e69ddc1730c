"""One clone job seen from Slack: fetch the clip, submit it, keep a progress message current, deliver the WAV.

    flow = CloneFlow(services, client, order, reply)
    admission = flow.admit()        # download + CloneService.submit; raises when refused (shown on the form)
    await flow.run()                # progress message -> result WAV in the thread (or the failure, privately)

The progress message goes where the request was made: into the channel for `/clone` (the WAV then goes into
its thread), into the message's thread for the shortcut and mentions. It always ends in a final state, done or
failed; when Slack would not take that edit, the user is told privately. The WAV goes by the first route that
takes it (`bot.slack.delivery`: thread, direct message, else kept for the admins). Validation, queueing and the
timing report are `commands`' own; nothing here decides what is a valid clip or how long anyone waits.

The accepted job is journaled with its channel, thread and user (`commands.job_journal`). When the bot restarts
meanwhile, the user hears it will continue; the next process takes it over (`resume_jobs`, a `ResumedFlow`):
a new progress message where it was asked, the WAV in its thread, else as a direct message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog
from slack_sdk.web.async_client import AsyncWebClient

from backend.errors import VoicebotError
from bot.slack.delivery import Route, deliver
from bot.slack.members import PLATFORM
from bot.slack.clip_fetch import fetch_clip
from bot.slack.messages import UNEXPECTED, error_line, escape, progress_text, user_text
from bot.slack.progress import ProgressMessage
from bot.slack.replies import Replier
from bot.slack.services import SlackServices
from commands.errors import JobSuspended, UnexpectedJobError
from commands.health import is_admin
from commands.job_journal import JobJournaling, JobOrigin, journaled_as
from commands.jobs import Job
from commands.storage.journal import JournalEntry
from commands.storage.voices import Member

log = structlog.get_logger(__name__)


@dataclass
class CloneOrder:
    """What a Slack user asked for, and where."""

    user: str  # Slack user id (U…)
    team: str
    channel: str
    thread_ts: str | None  # None: a new message in the channel, the result in its thread
    file: dict[str, Any] | None  # Slack file object of the reference clip (None: a saved voice speaks)
    text: str
    ref_text: str | None = None
    language: str | None = None
    variant: str | None = None
    voice: str | None = None  # the saved voice's name (`/say`)

    @property
    def user_key(self) -> str:
        return self.member.key

    @property
    def member(self) -> Member:
        return Member(PLATFORM, self.team, self.user)

    @property
    def place(self) -> str:
        return f"{PLATFORM}:{self.team}/{self.channel}"


class CloneFlow:
    def __init__(self, services: SlackServices, client: AsyncWebClient, order: CloneOrder, reply: Replier) -> None:
        self.services = services
        self.client = client
        self.order = order
        self.reply = reply
        self.progress = ProgressMessage(client, services.pacer, order.team, order.channel, order.thread_ts,
                                        order.user)
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
        assert order.file is not None

        async def check(size: int | None) -> None:  # everything but the audio itself, before downloading it
            await clone.check_request(order.user_key, order.text, order.ref_text, order.language, order.variant,
                                      reference_size=size, is_admin=admin)

        clip = await fetch_clip(self.services, self.client, order.file, check)
        with journaled_as(self.origin()):
            job = await clone.submit(
                order.user_key, order.place, clip.data, clip.filename, order.text, order.ref_text, order.language,
                order.variant, is_admin=admin, on_progress=self.progress.on_job,
            )
        self.services.library.record_clone(job, order.member, order.channel)
        return job

    def origin(self) -> JobOrigin:
        """What the job journal keeps so a restarted bot delivers the job (`ResumedFlow`): channel, thread, user
        and the saved voice's name."""
        order = self.order
        route = {"channel": order.channel, "thread_ts": order.thread_ts, "user": order.user, "voice": order.voice}
        return JobOrigin(order.member, order.place, route)

    async def run(self) -> None:
        """Admission (if not done yet), then the job to its end; every failure reaches the user."""
        job: Job | None = None
        try:
            try:
                job = await self.admit()
            except VoicebotError as exc:
                self.note(exc)
                await self.reply.ephemeral(error_line(exc))
                return
            await self._follow(job)
        except Exception:
            log.exception("slack.clone_flow_failed", job_id=job.id if job else None, user=self.order.user,
                          channel=self.order.channel)
            if job is not None and not job.finished:
                job.mark_failed(UnexpectedJobError("unexpected error; the admins have the log."))
            message = user_text(job.error) if job is not None and job.error is not None else UNEXPECTED
            await self._failed(job, message)

    async def _follow(self, job: Job) -> None:
        try:
            await self.progress.start(job)
        except VoicebotError as exc:
            job.mark_failed(exc)  # nobody could see the result: free the slot
            self.note(exc)
            await self.reply.ephemeral(error_line(job.error or exc))
            return
        try:
            result = await job.wait()
            async with job.delivering():
                route = await deliver(self.services, self.client, self.order, job, result.audio,
                                      self.order.thread_ts or self.progress.ts)
        except VoicebotError as exc:
            self.note(exc)
            await self._failed(job, user_text(job.error or exc))
            return
        await self._done(job, route)

    async def _done(self, job: Job, route: Route) -> None:
        """The final "done" state; if Slack would not show it, the user hears it privately."""
        where = "your direct messages with Voicebot" if route is Route.DM else "the thread"
        text = progress_text(job, self.order.user)
        if route is Route.DM:
            text += " (the audio was sent as a direct message)"
        if not await self.progress.finish(text):
            log.warning("slack.progress_not_final", job_id=job.id, channel=self.order.channel)
            await self.reply.ephemeral(f":white_check_mark: Job {job.id} is done: the audio is in {where}.")

    async def _failed(self, job: Job | None, message: str) -> None:
        """Tell the user privately why; the public message ends as "failed" without the reason (or with it,
        when Slack took no private message)."""
        told = await self.reply.ephemeral(f":x: {escape(message)}")
        user = self.order.user
        if not told:
            public = f":x: <@{user}> {escape(message)}"
        elif job is not None and isinstance(job.error, JobSuspended):
            public = f":double_vertical_bar: <@{user}> Job {job.id} is paused while the bot restarts; it continues " \
                     "when the bot is back."
        elif job is not None:
            public = f":x: <@{user}> Job {job.id} failed."
        else:
            public = f":x: <@{user}> The voice clone failed."
        if self.progress.ts is not None and not await self.progress.finish(public):
            log.warning("slack.progress_not_final", job_id=job.id if job else None, channel=self.order.channel,
                        told=told)

    def note(self, error: VoicebotError) -> None:
        """The operator side of a failure this user is about to be shown (see `SlackServices.note`)."""
        self.services.note(error, user=self.order.user, channel=self.order.channel)


class ResumedFlow(CloneFlow):
    """A job a previous process accepted and journaled, taken over after a restart: re-queued under its id
    (no admission, no download) or, when too old or its clip is gone, refused with the reason told privately."""

    def __init__(self, services: SlackServices, client: AsyncWebClient, journal: JobJournaling,
                 entry: JournalEntry) -> None:
        route = entry.route
        order = CloneOrder(user=str(route["user"]), team=entry.workspace_id, channel=str(route["channel"]),
                           thread_ts=_text_or_none(route.get("thread_ts")), file=None, text=entry.text,
                           voice=_text_or_none(route.get("voice")))
        super().__init__(services, client, order, Replier(client, order.channel, order.user,
                                                          thread_ts=order.thread_ts))
        self.journal = journal
        self.entry = entry

    async def _submit(self) -> Job:
        return await self.journal.resume(self.services.clone, self.entry, on_progress=self.progress.on_job)

    async def _follow(self, job: Job) -> None:
        await self.services.library.record_resumed(job, self.entry)
        await self.reply.ephemeral(f":arrows_counterclockwise: The bot restarted; job {job.id} continues.")
        await super()._follow(job)


def _text_or_none(value: object) -> str | None:
    return str(value) if value else None


async def resume_jobs(services: SlackServices, client: AsyncWebClient) -> int:
    """Take over the Slack jobs a previous process left in the journal, each as a tracked `ResumedFlow`. They
    are queued again one by one, oldest first, so they keep their order. Returns how many were found."""
    journal = services.clone.journal
    if journal is None:
        return 0
    entries = await journal.unfinished(PLATFORM)
    for entry in entries:
        flow = ResumedFlow(services, client, journal, entry)
        await asyncio.wait([flow.admit()])  # queued (or refused: the flow tells the user) before the next one
        services.spawn(flow.run(), name=f"slack-resume-{entry.job_id}")
    if entries:
        log.info("slack.jobs_resumed", jobs=len(entries))
    return len(entries)
