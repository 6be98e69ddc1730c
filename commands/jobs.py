"""Clone jobs and the per-process queue that runs them, first come first served.

A clone job moves QUEUED -> CLONING -> GENERATING -> UPLOADING -> DONE, or ends FAILED at any point. The queue
owns the first three steps (admission, waiting for one of `max_concurrent` slots, the backend call); the
adapter owns the last two, because only it knows when the user has the audio:

    job = await service.submit(...)          # raises before queueing when the request is refused
    result = await job.wait()                # raises VoicebotError("Job J7K2QX failed: ...")
    async with job.delivering():             # UPLOADING, then DONE (or FAILED if the upload raises)
        await channel.send(file=...)

`on_progress(job)` is called whenever the job's status or queue position changes: in a background task,
never twice at once for one job, coalesced (a slow callback sees the latest state, not every step; the final
DONE/FAILED always arrives). It may be a plain function or a coroutine function, and its errors are logged,
never raised into the job. The first call can run before `submit` has returned to its caller.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import secrets
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import structlog

from backend.errors import BackendFailed, VoicebotError
from commands.errors import BotRestarting, Cooldown, QueueFull, TooManyJobs, UnexpectedJobError

if TYPE_CHECKING:
    from backend.schema import CloneResult
    from commands.settings import CommandSettings

log = structlog.get_logger(__name__)

Clock = Callable[[], float]
ProgressCallback = Callable[["Job"], Awaitable[None] | None]
Work = Callable[["Job"], Awaitable["CloneResult"]]

ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: users read ids back to the admins
ID_LENGTH = 6
RESTART_HINT = "Please submit it again in a minute."


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
_ORDER = list(JobStatus)


class Job:
    """One clone job and the adapter's handle on it.

    Times (`created_at`, `started_at`, `finished_at`) are readings of the queue's clock (monotonic seconds);
    use the `*_s` properties for durations. `result` is set once the backend answered, `error` once it failed.
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
        self._queue = queue
        self._work = work
        self._on_progress = on_progress
        self._settled = asyncio.Event()  # result or error known
        self._finished = asyncio.Event()  # DONE or FAILED
        self._last_position: int | None = None
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

    def _end(self) -> float:
        return self.finished_at if self.finished_at is not None else self._queue.now()

    def describe(self) -> str:
        """One line for a progress message: "Job J7K2QX: queued, position 2 of 3", "Job J7K2QX: done in 8.1 s"."""
        if self.status is JobStatus.FAILED and self.error is not None:
            return self.error.message
        if self.status is JobStatus.QUEUED and self.position is not None:
            return f"Job {self.id}: queued, position {self.position} of {self._queue.queued}"
        if self.status is JobStatus.DONE:
            return f"Job {self.id}: done in {self.total_s:.1f} s"
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


@dataclass(frozen=True)
class QueueStats:
    """What the health report shows about this process's jobs; percentiles over the last `window` jobs."""

    uptime_s: float
    queued: int
    running: int
    max_concurrent: int
    max_queue: int
    done: int
    failed: int
    window: int
    total_p50_s: float | None = None
    total_p95_s: float | None = None
    wait_p50_s: float | None = None
    wait_p95_s: float | None = None
    rtf_p50: float | None = None
    rtf_p95: float | None = None


@dataclass(frozen=True)
class DrainReport:
    finished: int  # jobs that reached DONE/FAILED on their own while draining
    cancelled_queued: int  # never started: failed with BotRestarting
    interrupted: int  # still running or uploading at the deadline: failed with BotRestarting


def p50_p95(values: Iterable[float]) -> tuple[float | None, float | None]:
    """Median and 95th percentile (inclusive method: always within the observed range)."""
    data = sorted(v for v in values if math.isfinite(v))
    if not data:
        return None, None
    if len(data) == 1:
        return data[0], data[0]
    cuts = statistics.quantiles(data, n=100, method="inclusive")
    return cuts[49], cuts[94]


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
        wrapped.__cause__ = error
    wrapped.job_id = job_id  # type: ignore[attr-defined]
    return wrapped


class JobQueue:
    """FIFO with `max_concurrent` slots, per-user cooldown and in-flight limit, and a bounded wait list.

    One instance per process, shared by every adapter. Must be used from one event loop.
    """

    def __init__(
        self, max_concurrent: int = 2, *, max_queue: int = 50, max_per_user: int = 2, cooldown_s: float = 10.0,
        clock: Clock = time.monotonic, window: int = 500,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.max_per_user = max_per_user
        self.cooldown_s = cooldown_s
        self.window = window
        self._clock = clock
        self._started_at = clock()
        self._waiting: deque[Job] = deque()
        self._tasks: dict[str, tuple[Job, asyncio.Task[None]]] = {}  # jobs in the backend call
        self._active: dict[str, Job] = {}  # every job not yet DONE/FAILED
        self._last_submit: dict[str, float] = {}
        self._recent_ids: dict[str, None] = {}
        self._notifiers: set[asyncio.Task[None]] = set()
        self._closing = False
        self.done = 0
        self.failed = 0
        self._total_s: deque[float] = deque(maxlen=window)
        self._wait_s: deque[float] = deque(maxlen=window)
        self._rtf: deque[float] = deque(maxlen=window)

    @classmethod
    def from_settings(cls, settings: CommandSettings, *, clock: Clock = time.monotonic) -> JobQueue:
        return cls(
            settings.max_concurrent_jobs, max_queue=settings.max_queue, max_per_user=settings.max_jobs_per_user,
            cooldown_s=settings.cooldown_s, clock=clock,
        )

    # -- reading -----------------------------------------------------------------------------------------
    def now(self) -> float:
        return self._clock()

    @property
    def queued(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._tasks)

    @property
    def closed(self) -> bool:
        return self._closing

    def position(self, job: Job) -> int | None:
        """1-based place of a QUEUED job (1 = starts next), None once it started or finished."""
        for index, waiting in enumerate(self._waiting):
            if waiting is job:
                return index + 1
        return None

    def get(self, job_id: str) -> Job | None:
        """An unfinished job by id (case-insensitive)."""
        return self._active.get(job_id.strip().upper())

    def jobs_of(self, user_id: str) -> list[Job]:
        """The user's unfinished jobs, oldest first."""
        return [job for job in self._active.values() if job.user_id == user_id]

    def in_flight(self, user_id: str) -> int:
        """The user's jobs waiting or in the backend call (uploads do not count)."""
        return sum(job.user_id == user_id for job in self._waiting) + sum(
            job.user_id == user_id and not job.finished for job, _ in self._tasks.values()
        )

    def stats(self) -> QueueStats:
        total = p50_p95(self._total_s)
        wait = p50_p95(self._wait_s)
        rtf = p50_p95(self._rtf)
        return QueueStats(
            uptime_s=self._clock() - self._started_at, queued=self.queued, running=self.running,
            max_concurrent=self.max_concurrent, max_queue=self.max_queue, done=self.done, failed=self.failed,
            window=self.window, total_p50_s=total[0], total_p95_s=total[1], wait_p50_s=wait[0],
            wait_p95_s=wait[1], rtf_p50=rtf[0], rtf_p95=rtf[1],
        )

    # -- admission ---------------------------------------------------------------------------------------
    def check_admission(self, user_id: str, *, is_admin: bool = False) -> None:
        """Raise BotRestarting / TooManyJobs / Cooldown / QueueFull if a job of this user would be refused now.

        Admins skip the per-user limit and the cooldown, not the queue length.
        """
        if self._closing:
            raise BotRestarting("The bot is restarting; please try again in a minute.")
        if not is_admin:
            count = self.in_flight(user_id)
            if count >= self.max_per_user:
                raise TooManyJobs(
                    f"You already have {count} voice clone job{'s' if count != 1 else ''} queued or running "
                    f"(the limit is {self.max_per_user}); wait for one to finish."
                )
            last = self._last_submit.get(user_id)
            if last is not None and self.cooldown_s > 0:
                left = self.cooldown_s - (self._clock() - last)
                if left > 0:
                    raise Cooldown.after(left)
        if len(self._waiting) >= self.max_queue and len(self._tasks) >= self.max_concurrent:
            raise QueueFull(
                f"The queue is full ({len(self._waiting)} jobs waiting); please try again in a few minutes."
            )

    def submit(
        self, work: Work, *, user_id: str, place: str, text: str = "", language: str = "",
        variant: str | None = None, on_progress: ProgressCallback | None = None, is_admin: bool = False,
    ) -> Job:
        """Admit (or raise, see `check_admission`) and enqueue a job; `work(job)` runs when a slot is free."""
        self.check_admission(user_id, is_admin=is_admin)
        now = self._clock()
        job = Job(
            self, self._new_id(), user_id=user_id, place=place, text=text, language=language, variant=variant,
            created_at=now, work=work, on_progress=on_progress,
        )
        self._active[job.id] = job
        self._waiting.append(job)
        self._last_submit[user_id] = now
        self._forget_old_cooldowns(now)
        log.info("job.queued", job_id=job.id, user_id=user_id, place=place, variant=variant,
                 position=len(self._waiting), running=len(self._tasks))
        self._pump()
        return job

    def _new_id(self) -> str:
        while True:
            job_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
            if job_id not in self._active and job_id not in self._recent_ids:
                break
        self._recent_ids[job_id] = None
        if len(self._recent_ids) > 4 * self.window:
            del self._recent_ids[next(iter(self._recent_ids))]
        return job_id

    def _forget_old_cooldowns(self, now: float) -> None:
        if len(self._last_submit) > 1024:
            self._last_submit = {u: t for u, t in self._last_submit.items() if now - t < self.cooldown_s}

    # -- running -----------------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Start waiting jobs while slots are free, then tell everyone whose position changed."""
        while self._waiting and len(self._tasks) < self.max_concurrent and not self._closing:
            self._start(self._waiting.popleft())
        for index, job in enumerate(self._waiting):
            if job._last_position != index + 1:
                job._last_position = index + 1
                self._notify(job)

    def _start(self, job: Job) -> None:
        job.started_at = self._clock()
        job._last_position = None
        self._wait_s.append(job.queue_wait_s)
        task = asyncio.get_running_loop().create_task(self._run(job), name=f"clone-job-{job.id}")
        self._tasks[job.id] = (job, task)
        log.info("job.started", job_id=job.id, queue_wait_s=round(job.queue_wait_s, 3))
        self._set_status(job, JobStatus.CLONING)

    async def _run(self, job: Job) -> None:
        try:
            result = await job._work(job)
        except asyncio.CancelledError:
            if self._closing:
                self._fail(job, BotRestarting(f"Job {job.id} was interrupted: the bot is restarting. {RESTART_HINT}"))
            else:
                self._fail(job, VoicebotError("it was cancelled.", code="cancelled"))
            self._release(job)
            raise
        except GeneratorExit:  # the event loop is gone (closed with the task pending): nothing left to tell
            self._tasks.pop(job.id, None)
            raise
        except VoicebotError as exc:
            self._fail(job, exc)
        except Exception:
            log.exception("job.crashed", job_id=job.id, user_id=job.user_id, place=job.place, variant=job.variant)
            self._fail(job, UnexpectedJobError("unexpected error; the admins have the log."))
        except BaseException:  # KeyboardInterrupt, SystemExit: tell the user, let the process stop
            self._fail(job, UnexpectedJobError("unexpected error; the admins have the log."))
            self._release(job)
            raise
        else:
            self._succeed(job, result)
        self._release(job)

    def _release(self, job: Job) -> None:
        """The job's backend slot is free: start the next one."""
        self._tasks.pop(job.id, None)
        self._pump()

    def stage(self, job: Job, stage: str) -> None:
        """The backend's `on_stage`: "cloning" or "generating" (never moves a job backwards)."""
        status = JobStatus.GENERATING if stage == "generating" else JobStatus.CLONING
        if job.id in self._tasks and _ORDER.index(status) > _ORDER.index(job.status):
            self._set_status(job, status)

    def _succeed(self, job: Job, result: CloneResult) -> None:
        if job.finished:
            return
        job.result = result
        rtf = result.real_time_factor
        if math.isfinite(rtf):
            self._rtf.append(rtf)
        log.info("job.generated", job_id=job.id, audio_s=round(result.audio_seconds, 2),
                 backend_s=round(result.timings.total_s, 3), rtf=round(rtf, 3) if math.isfinite(rtf) else None)
        job._settled.set()
        if job.status is JobStatus.CLONING:
            self._set_status(job, JobStatus.GENERATING)

    def _advance(self, job: Job, status: JobStatus) -> None:
        """UPLOADING or DONE, asked by the adapter; a no-op on a job that already finished (e.g. drained)."""
        if job.finished:
            return
        if job.result is None:
            raise RuntimeError(f"job {job.id} has no result yet: await job.wait() before marking it {status.value}")
        if status is JobStatus.DONE:
            job.finished_at = self._clock()
            self.done += 1
            self._total_s.append(job.total_s)
            self._active.pop(job.id, None)
            log.info("job.done", job_id=job.id, total_s=round(job.total_s, 3))
            self._set_status(job, status)
            job._finished.set()
        else:
            self._set_status(job, status)

    def _fail(self, job: Job, error: VoicebotError) -> None:
        if job.finished:
            return
        error = with_job_id(job.id, error)
        job.error = error
        job.finished_at = self._clock()
        self.failed += 1
        self._active.pop(job.id, None)
        was_waiting = job in self._waiting
        if was_waiting:
            self._waiting.remove(job)
        running = self._tasks.get(job.id)
        if running is not None and running[1] is not asyncio.current_task():
            running[1].cancel()  # failed from outside (the adapter gave up): stop the backend call too
        log.info("job.failed", job_id=job.id, code=error.code, error=error.message)
        self._set_status(job, JobStatus.FAILED)
        job._settled.set()
        job._finished.set()
        if was_waiting and not self._closing:
            self._pump()

    def _set_status(self, job: Job, status: JobStatus) -> None:
        if job.status is not status:
            job.status = status
            self._notify(job)

    # -- progress callbacks ------------------------------------------------------------------------------
    def _notify(self, job: Job) -> None:
        if job._on_progress is None:
            return
        job._dirty = True
        if job._notifier is None or job._notifier.done():
            task = asyncio.get_running_loop().create_task(self._deliver(job), name=f"clone-job-{job.id}-progress")
            job._notifier = task
            self._notifiers.add(task)
            task.add_done_callback(self._notifiers.discard)

    async def _deliver(self, job: Job) -> None:
        while job._dirty:
            job._dirty = False
            try:
                outcome = job._on_progress(job)  # type: ignore[misc]
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("job.progress_callback_failed", job_id=job.id, status=job.status.value)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every pending progress callback has run; False if some still run at the timeout."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._notifiers:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(list(self._notifiers), timeout=left)
        return True

    # -- shutdown ----------------------------------------------------------------------------------------
    async def drain(self, timeout: float = 30.0, *, notify_timeout: float = 5.0) -> DrainReport:
        """Refuse new jobs, fail the queued ones at once, give running and uploading jobs `timeout` seconds to
        finish, then fail what is left; every failure is a `BotRestarting` their users are told about."""
        self._closing = True
        queued = list(self._waiting)
        for job in queued:
            self._fail(job, BotRestarting(f"Job {job.id} was not started: the bot is restarting. {RESTART_HINT}"))
        pending = list(self._active.values())
        log.info("queue.draining", cancelled_queued=len(queued), pending=len(pending), timeout_s=timeout)
        if pending:
            waiters = [asyncio.ensure_future(job._finished.wait()) for job in pending]
            await asyncio.wait(waiters, timeout=timeout)
            for waiter in waiters:
                waiter.cancel()
        late = [job for job in pending if not job.finished]
        tasks = [self._tasks[job.id][1] for job in late if job.id in self._tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=notify_timeout)
        for job in late:  # uploads in progress, or backend calls that ignored the cancellation
            self._fail(job, BotRestarting(f"Job {job.id} was interrupted: the bot is restarting. {RESTART_HINT}"))
        await self.flush(timeout=notify_timeout)
        report = DrainReport(finished=len(pending) - len(late), cancelled_queued=len(queued), interrupted=len(late))
        log.info("queue.drained", **report.__dict__)
        return report
