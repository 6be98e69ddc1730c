"""Accepted clone jobs written down in the database, so a restarted bot resumes what was queued and delivers
what finished instead of asking users to submit again.

    journaling = JobJournaling(storage)                        # one per process
    service.use_journal(journaling)                            # the queue reports every job's moves to it
    with journaled_as(JobOrigin(member, place, route)):        # the adapter, around the submission
        job = await service.submit(...)
    ...                                                        # after a restart:
    for entry in await journaling.unfinished("discord"):
        job = await journaling.resume(service, entry)          # re-queued, same job id; or JobNotResumed

A journaled job's entry moves queued -> running -> finished (the WAV kept in the ClipStore) and is removed once
the job is delivered or failed (its user was told); the reference clip and the kept result go with it unless
something else still uses them. A restart (`JobQueue.drain`) suspends journaled jobs instead of failing them:
their entries stay, as queued (or finished, with the result), and are released, so the next process takes them
over at once. `route` is the adapter's JSON: everything it needs to reach the user again (`bot.discord.routes`,
`bot.slack.delivery`); it may hold secrets (an interaction token), so it is never logged.

Each entry is held by the process running its job: `unfinished` takes over only what no live process holds
(released, or left by a process that died), so a bot starting beside live siblings on one database (Discord
shards, Slack replicas) does not run their jobs a second time; `taking_over` looks again while the bot serves,
for the jobs of a process that died after it started.

The journal is kept off the job's path: every write runs in a background task, one job's writes in order, and a
write that fails is logged and the job goes on (it is then simply not resumable).
"""

from __future__ import annotations

import asyncio
import io
import math
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from backend.errors import VoicebotError
from backend.schema import CloneResult, Timings
from commands.storage.journal import JobState, JournalEntry
from commands.storage.voices import Member

if TYPE_CHECKING:
    from commands.clone import CloneService
    from commands.jobs import Job, ProgressCallback
    from commands.storage import Storage

log = structlog.get_logger(__name__)

MAX_AGE = timedelta(hours=24)  # older jobs are not run after a restart: their user has moved on
TAKE_OVER_S = 30.0  # how often a serving bot looks for jobs a dead process left (`taking_over`)
PLACE = "place"  # the key of the job's `place` in the journaled route, beside the adapter's own keys


@dataclass(frozen=True)
class JobOrigin:
    """Who asked for a job, where (`place`, as the queue knows it), and the adapter's way back to them."""

    member: Member
    place: str
    route: dict[str, object]
    voice_id: str | None = None


_origin: ContextVar[JobOrigin | None] = ContextVar("job_origin", default=None)


@contextmanager
def journaled_as(origin: JobOrigin) -> Iterator[None]:
    """Jobs submitted inside the block are journaled with `origin` (the adapter sets it around the use case
    that submits: `/clone` and `/say` alike, however deep the submission happens)."""
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


def current_origin() -> JobOrigin | None:
    return _origin.get()


@asynccontextmanager
async def taking_over(take_over: Callable[[], Awaitable[object]], *, every_s: float = TAKE_OVER_S
                      ) -> AsyncIterator[None]:
    """While the bot serves (leave the block before the queue drains), run the adapter's `take_over` (its
    `resume_jobs`) every `every_s`. A process that died leaves its jobs leased to it until the lease is stale:
    the process that replaced it at once (a crash and an immediate restart) or a live sibling then runs them,
    instead of only the next process to start. A failed round is logged; the next one tries again."""

    async def rounds() -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await take_over()
            except Exception:
                log.exception("journal.take_over_failed")

    task = asyncio.get_running_loop().create_task(rounds(), name="journal-take-over")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


class JobNotResumed(VoicebotError):
    """A journaled job the restarted bot will not run: too old, or its clip is gone. Its entry is removed;
    the adapter tells the user privately."""

    code = "not_resumed"


# The backend's timings stayed with the process that ran the job: a kept result reports them as unknown
# ("n/a" in the timing report, not a misleading 0 s).
UNKNOWN_TIMINGS = Timings(clone_s=math.nan, generate_s=math.nan, decode_s=math.nan, total_s=math.nan)


def stored_result(wav: bytes, variant: str | None) -> CloneResult:
    """A finished job's result as kept in the ClipStore: the audio and its length, timings unknown."""
    with wave.open(io.BytesIO(wav)) as reader:
        frames, rate = reader.getnframes(), reader.getframerate()
    return CloneResult(audio=wav, sample_rate=rate, audio_seconds=frames / rate if rate else 0.0, frames=0,
                       timings=UNKNOWN_TIMINGS, variant=variant or "")


class JobJournaling:
    """One per process, over the process's `Storage`: writes jobs down (the queue's `JobLog`) and picks them up
    after a restart. `now` is the wall clock the age bound is measured on."""

    def __init__(self, storage: Storage, *, max_age: timedelta = MAX_AGE,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.storage = storage
        self.max_age = max_age
        self._now = now
        self._clips: dict[str, str] = {}  # job id -> reference clip digest, for every job being journaled
        self._results: dict[str, str] = {}  # job id -> kept result digest
        self._written: set[str] = set()  # jobs whose entry is in the database
        self._writes: dict[str, asyncio.Task[None]] = {}  # each job's latest write; the next one waits for it

    # -- writing -------------------------------------------------------------------------------------------
    def accept(self, job: Job, origin: JobOrigin, clip_wav: bytes, transcript: str | None) -> None:
        """Write the accepted job down (the queue's `on_accept`: before it can start)."""
        entry = JournalEntry(
            job_id=job.id, platform=origin.member.platform, workspace_id=origin.member.workspace_id,
            user_id=origin.member.user_id, route={**origin.route, PLACE: origin.place}, text=job.text,
            language=job.language, clip_sha256="", transcript=transcript, voice_id=origin.voice_id,
            variant=job.variant, accepted_at=self._now(),
        )
        self._clips[job.id] = ""

        async def write() -> None:
            sha256 = await self.storage.clips.put(clip_wav)
            self._clips[job.id] = sha256
            await self.storage.journal.accept(replace(entry, clip_sha256=sha256))
            self._written.add(job.id)

        self._schedule(job.id, "accept", write)

    def moved(self, job: Job, state: JobState) -> None:
        if job.id not in self._clips:
            return  # not journaled (submitted without an origin)
        if state == "finished":
            assert job.result is not None
            audio = job.result.audio

            async def write() -> None:
                if job.id in self._written:
                    self._results[job.id] = await self.storage.clips.put(audio)
                    await self.storage.journal.update(job.id, "finished", result_sha256=self._results[job.id])
        elif state in ("delivered", "failed"):
            async def write() -> None:
                await self._remove(job.id)
        elif state == "queued":  # suspended by a restart: handed to the next process at once
            async def write() -> None:
                if job.id in self._written:
                    if job.result is None:  # to run again; one suspended while uploading stays "finished"
                        await self.storage.journal.update(job.id, "queued")
                    await self.storage.journal.release([job.id])
        else:
            async def write() -> None:
                if job.id in self._written:
                    await self.storage.journal.update(job.id, state)

        self._schedule(job.id, state, write)

    def keeps(self, job: Job) -> bool:
        return job.id in self._written

    async def flush(self, timeout: float | None = None) -> bool:
        return await self.settle(list(self._writes), timeout)

    async def settle(self, job_ids: list[str], timeout: float | None = None) -> bool:
        """Wait until the writes for these jobs are done (forget-me waits, so no write resurrects an entry)."""
        pending = [self._writes[job_id] for job_id in job_ids if job_id in self._writes]
        if not pending:
            return True
        _, late = await asyncio.wait(pending, timeout=timeout)
        return not late

    def _schedule(self, job_id: str, what: str, write: Callable[[], Awaitable[None]]) -> None:
        previous = self._writes.get(job_id)

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                await write()
            except Exception as exc:  # the journal must never fail the job: it is only not resumable then
                detail = exc.operator_text if isinstance(exc, VoicebotError) else repr(exc)
                log.warning("journal.write_failed", job_id=job_id, write=what, detail=detail)

        task = asyncio.get_running_loop().create_task(run(), name=f"journal-{job_id}-{what}")
        self._writes[job_id] = task
        task.add_done_callback(lambda done: self._writes.pop(job_id, None) if self._writes.get(job_id) is done
                               else None)

    async def _remove(self, job_id: str) -> None:
        """The job is over: its entry goes, and its clip and kept result unless something else uses them."""
        clip, result = self._clips.pop(job_id, ""), self._results.pop(job_id, None)
        if job_id in self._written:
            self._written.discard(job_id)
            await self.storage.journal.forget(job_id)
        if clip and await self.storage.voices.references(clip) == 0:
            await self.storage.clips.delete(clip)
        if result:
            await self.storage.clips.delete(result)

    # -- resuming ------------------------------------------------------------------------------------------
    async def unfinished(self, platform: str) -> list[JournalEntry]:
        """Take over the platform's jobs a previous process left (released at its shutdown, or no longer renewed:
        it died), oldest first; none (logged) when the database fails: the bot still starts."""
        try:
            return await self.storage.journal.unfinished(platform)
        except VoicebotError as exc:
            log.warning("journal.unreadable", platform=platform, detail=exc.operator_text)
            return []

    async def resume(self, service: CloneService, entry: JournalEntry, *,
                     on_progress: ProgressCallback | None = None) -> Job:
        """Queue the entry's job again under its id, without admission: a finished one only delivers its kept
        result, the others run on the backend again. Raises `JobNotResumed` (the entry removed) when the job is
        older than `max_age` or its clip is gone, `BotRestarting` when the queue is draining."""
        member = Member(entry.platform, entry.workspace_id, entry.user_id)
        route = dict(entry.route)
        place = str(route.pop(PLACE, f"{entry.platform}:{entry.workspace_id}"))
        self._clips[entry.job_id] = entry.clip_sha256
        self._written.add(entry.job_id)
        if entry.result_sha256:
            self._results[entry.job_id] = entry.result_sha256
        age = self._now() - entry.accepted_at
        if age > self.max_age:
            await self._give_up(entry, f"it waited more than {self.max_age.total_seconds() / 3600:g} hours while "
                                       "the bot was offline. Please submit it again.", "expired")
        work = await self._work(service, entry)
        job = service.queue.resume(work, job_id=entry.job_id, user_id=member.key, place=place, text=entry.text,
                                   language=entry.language, variant=entry.variant, on_progress=on_progress)
        log.info("journal.resumed", job_id=entry.job_id, state=entry.state, user_id=member.key,
                 age_s=round(age.total_seconds()))
        return job

    async def _work(self, service: CloneService, entry: JournalEntry) -> Callable[[Job], Awaitable[CloneResult]]:
        if entry.state == "finished" and entry.result_sha256:
            try:
                wav = await self.storage.clips.get(entry.result_sha256)
            except LookupError:
                log.warning("journal.result_gone", job_id=entry.job_id)  # run it again from the clip
            else:
                result = stored_result(wav, entry.variant)

                async def deliver_kept(job: Job) -> CloneResult:
                    return result

                return deliver_kept
        try:
            clip = await self.storage.clips.get(entry.clip_sha256)
        except LookupError:
            await self._give_up(entry, "its reference clip is no longer stored. Please submit it again.",
                                "clip_gone")
        return service.work_for(clip, entry.text, entry.transcript, entry.language, entry.variant)

    async def _give_up(self, entry: JournalEntry, reason: str, why: str) -> None:
        """Remove the entry (and what only it used), then raise `JobNotResumed` for the adapter to tell."""
        log.info("journal.not_resumed", job_id=entry.job_id, reason=why)
        try:
            await self._remove(entry.job_id)
        except VoicebotError as exc:
            log.warning("journal.write_failed", job_id=entry.job_id, write="remove", detail=exc.operator_text)
        raise JobNotResumed(f"Job {entry.job_id} could not be finished after the bot restarted: {reason}",
                            code="not_resumed")
