"""One clone job: its status, what it shows its user, and the adapter's handle on it.

A clone job moves QUEUED -> CLONING -> GENERATING -> UPLOADING -> DONE, or ends FAILED at any point. The queue
(`commands.jobs.JobQueue`) owns the first three steps; the adapter owns the last two, because only it knows
when the user has the audio:

    result = await job.wait()                # raises VoicebotError("Job J7K2QX failed: ...")
    async with job.delivering():             # UPLOADING, then DONE (or FAILED if the upload raises)
        await channel.send(file=...)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import TYPE_CHECKING

import structlog

from backend.errors import BackendFailed, VoicebotError
from commands.errors import UnexpectedJobError
from commands.progress import generation_line

if TYPE_CHECKING:
    from backend.schema import CloneResult, Progress
    from commands.jobs import JobQueue

log = structlog.get_logger(__name__)

ProgressCallback = Callable[["Job"], Awaitable[None] | None]
Work = Callable[["Job"], Awaitable["CloneResult"]]


class JobStatus(StrEnum):
    QUEUED = "queued"
    CLONING = "cloning"
    GENERATING = "generating"
    UPLOADING = "uploading"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED)

    @property
    def label(self) -> str:
        """A short phrase for progress messages ("generating speech")."""
        return _LABELS[self]


_LABELS = {
    JobStatus.QUEUED: "queued",
    JobStatus.CLONING: "cloning the voice",
    JobStatus.GENERATING: "generating speech",
    JobStatus.UPLOADING: "uploading the audio",
    JobStatus.DONE: "done",
    JobStatus.FAILED: "failed",
}
ORDER = list(JobStatus)


class Job:
    """One clone job and the adapter's handle on it.

    Times (`created_at`, `started_at`, `finished_at`) are readings of the queue's clock (monotonic seconds);
    use the `*_s` properties for durations. `result` is set once the backend answered, `error` once it failed;
    `progress` is the backend's latest report while it runs.
    """

    def __init__(
        self, queue: JobQueue, id: str, *, user_id: str, place: str, text: str, language: str,
        variant: str | None, created_at: float, work: Work, on_progress: ProgressCallback | None,
    ) -> None:
        self.id = id
        self.user_id = user_id
        self.place = place
        self.text = text
        self.language = language
        self.variant = variant
        self.status = JobStatus.QUEUED
        self.created_at = created_at
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.result: CloneResult | None = None
        self.error: VoicebotError | None = None
        self.progress: Progress | None = None
        self._queue = queue
        self._work = work
        self._on_progress = on_progress
        self._settled = asyncio.Event()  # result or error known
        self._finished = asyncio.Event()  # DONE or FAILED
        # the queue's bookkeeping of what the progress callback has been told, and when
        self._seen_place: tuple[int, int] | None = None  # (position, queue length) last reported
        self._notified_at = -float("inf")  # event loop time of the last callback run started
        self._refresh: asyncio.TimerHandle | None = None  # a held-back report, due at the end of the interval
        self._dirty = False
        self._notifier: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Job({self.id}, {self.status.value}, user={self.user_id!r})"

    # -- state -------------------------------------------------------------------------------------------
    @property
    def position(self) -> int | None:
        """1-based place in the queue while QUEUED, else None."""
        return self._queue.position(self)

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def queue_wait_s(self) -> float:
        """Seconds from submission to the start of the backend call (so far, while still queued)."""
        end = self.started_at if self.started_at is not None else self._end()
        return max(0.0, end - self.created_at)

    @property
    def total_s(self) -> float:
        """Seconds from submission to DONE/FAILED (so far, while unfinished)."""
        return max(0.0, self._end() - self.created_at)

    @property
    def running_s(self) -> float:
        """Seconds since the backend call started (0 while queued)."""
        return 0.0 if self.started_at is None else max(0.0, self._end() - self.started_at)

    def _end(self) -> float:
        return self.finished_at if self.finished_at is not None else self._queue.now()

    def describe(self) -> str:
        """One line for a progress message: "Job J7K2QX: queued, position 2 of 3" (the current queue),
        "Job J7K2QX: generating ▓▓▓▓░░░░ 52% · 6.1 s of audio · 4 s", "Job J7K2QX: done in 8.1 s"."""
        if self.status is JobStatus.FAILED and self.error is not None:
            return self.error.message
        if self.status is JobStatus.QUEUED and self.position is not None:
            return f"Job {self.id}: queued, position {self.position} of {self._queue.queued}"
        if self.status is JobStatus.DONE:
            return f"Job {self.id}: done in {self.total_s:.1f} s"
        if self.status is JobStatus.GENERATING and self.progress is not None:
            line = generation_line(self.progress, self.running_s)
            if line is not None:
                return f"Job {self.id}: {line}"
        return f"Job {self.id}: {self.status.label}…"

    # -- the adapter's side --------------------------------------------------------------------------------
    async def wait(self) -> CloneResult:
        """The backend's result, or raise the job's `VoicebotError` (its message names the job id)."""
        await self._settled.wait()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    async def wait_finished(self) -> JobStatus:
        """Until DONE or FAILED (after the adapter has delivered or given up)."""
        await self._finished.wait()
        return self.status

    def mark_uploading(self) -> None:
        """The adapter has the result and is sending it to the user."""
        self._queue._advance(self, JobStatus.UPLOADING)

    def mark_done(self) -> None:
        """The user has the audio."""
        self._queue._advance(self, JobStatus.DONE)

    def mark_failed(self, error: VoicebotError | str) -> None:
        """Delivery failed; the message is prefixed with the job id unless it already names it."""
        if isinstance(error, str):
            error = VoicebotError(error, code="delivery_failed")
        self._queue._fail(self, error)

    @asynccontextmanager
    async def delivering(self) -> AsyncIterator[CloneResult]:
        """UPLOADING for the body, then DONE; a raising body marks the job FAILED (and the error propagates)."""
        self.mark_uploading()
        assert self.result is not None
        try:
            yield self.result
        except VoicebotError as exc:
            self.mark_failed(exc)
            raise
        except asyncio.CancelledError:
            self.mark_failed(VoicebotError("delivering the audio was interrupted.", code="interrupted"))
            raise
        except Exception:
            log.exception("job.delivery_failed", job_id=self.id, user_id=self.user_id, place=self.place)
            self.mark_failed(UnexpectedJobError("the audio could not be delivered; the admins have the log."))
            raise
        else:
            self.mark_done()


def with_job_id(job_id: str, error: VoicebotError) -> VoicebotError:
    """`error` with its message as "Job J7K2QX failed: <message>", same class and code, and `job_id` set."""
    if job_id in error.message:
        wrapped = error
    else:
        message = f"Job {job_id} failed: {error.message}"
        try:
            wrapped = type(error)(message, code=error.code)
        except TypeError:  # a subclass with another constructor: keep the code, lose the class
            wrapped = BackendFailed(message, code=error.code)
        wrapped.detail = error.detail
        wrapped.__cause__ = error
    wrapped.job_id = job_id  # type: ignore[attr-defined]
    return wrapped
