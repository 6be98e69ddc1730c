"""The per-process queue that runs clone jobs, first come first served, with `max_concurrent` backend slots.

The queue owns a job's first three steps (admission, waiting for a slot, the backend call; see
`commands.clone_job` for the job itself and the adapter's part):

    job = await queue.submit(work, ...)      # raises before queueing when the request is refused
    result = await job.wait()

`on_progress(job)` is called whenever what the job shows its user changes, paced by `progress_interval_s` and
never twice at once (`commands.job_notifications`). The first call can run before `submit` has returned to its
caller.

A job's backend slot is freed whatever its work does: return, raise, get cancelled, or raise a BaseException.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from backend.errors import VoicebotError
from commands.admission import Admission, LocalLimits, keeps_cooldown
from commands.clone_job import ORDER, Job, JobStatus, ProgressCallback, Work, with_job_id
from commands.errors import BotRestarting, JobSuspended, UnexpectedJobError
from commands.job_notifications import ProgressNotifier
from commands.statistics import JobStatistics, QueueStats, p50_p95

if TYPE_CHECKING:
    from backend.schema import CloneResult, Progress
    from commands.settings import CommandSettings
    from commands.storage.journal import JobState
    from commands.storage.limits import SharedLimits

# Re-exported: the adapters and the health report import these from here.
__all__ = ["DrainReport", "Job", "JobLog", "JobQueue", "JobStatus", "ProgressCallback", "QueueStats", "Work",
           "p50_p95", "with_job_id"]

log = structlog.get_logger(__name__)

Clock = Callable[[], float]

ID_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: users read ids back to the admins
ID_LENGTH = 6
RESTART_HINT = "Please submit it again in a minute."
UNEXPECTED = "unexpected error; the admins have the log."


@dataclass(frozen=True)
class DrainReport:
    finished: int  # jobs that reached DONE/FAILED on their own while draining
    cancelled_queued: int  # never started: failed with BotRestarting (JobSuspended when journaled)
    interrupted: int  # still running or uploading at the deadline: failed with BotRestarting (or JobSuspended)


class JobLog(Protocol):
    """Where the queue reports its jobs' moves so that another process can take them over
    (`commands.job_journal.JobJournaling`). `moved` must not block or raise: the job goes on whatever the log does."""

    def moved(self, job: Job, state: JobState) -> None:
        """The job is now `state` ("running", "finished" with `job.result`, "delivered", "failed"; "queued" when
        it was suspended by a restart and the next process should run it)."""

    def keeps(self, job: Job) -> bool:
        """Whether the job is written down, so a restarted process resumes it."""

    async def flush(self, timeout: float) -> bool:
        """Wait for the writes still pending; False if some still run at the timeout."""


class JobQueue:
    """FIFO with `max_concurrent` slots, per-user cooldown and in-flight limit, and a bounded wait list.

    One instance per process, shared by every adapter. Must be used from one event loop. The per-user limits
    are `limits` (the storage's `SharedLimits`, shared by every bot process on its database), or this
    process's own when none is given. `clock` times the jobs (monotonic); `wall_clock` the limits, which other
    processes read too.
    """

    def __init__(
        self, max_concurrent: int = 2, *, max_queue: int = 50, max_per_user: int = 2, cooldown_s: float = 10.0,
        clock: Clock = time.monotonic, window: int = 500, progress_interval_s: float = 2.0,
        limits: SharedLimits | None = None, wall_clock: Clock = time.time,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self.notifications = ProgressNotifier(progress_interval_s)
        self.admission = Admission(limits=limits or LocalLimits(wall_clock), max_per_user=max_per_user,
                                   cooldown_s=cooldown_s, max_queue=max_queue, clock=wall_clock)
        self.statistics = JobStatistics(window)
        self._clock = clock
        self._started_at = clock()
        self._waiting: deque[Job] = deque()
        self._tasks: dict[str, tuple[Job, asyncio.Task[None]]] = {}  # jobs in the backend call
        self._active: dict[str, Job] = {}  # every job not yet DONE/FAILED
        self._recent_ids: dict[str, None] = {}
        self._admitting = 0  # submissions waiting for the limits' answer: they count as waiting
        self._closing = False
        self.journal: JobLog | None = None  # set by `CloneService.use_journal`: restarts suspend jobs, not fail them

    @classmethod
    def from_settings(cls, settings: CommandSettings, *, limits: SharedLimits | None = None,
                      clock: Clock = time.monotonic, wall_clock: Clock = time.time) -> JobQueue:
        return cls(
            settings.max_concurrent_jobs, max_queue=settings.max_queue, max_per_user=settings.max_jobs_per_user,
            cooldown_s=settings.cooldown_s, clock=clock, progress_interval_s=settings.progress_interval_s,
            limits=limits, wall_clock=wall_clock,
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

    @property
    def done(self) -> int:
        return self.statistics.done

    @property
    def failed(self) -> int:
        return self.statistics.failed

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
        """The user's jobs waiting or in the backend call in this process (uploads do not count); the limit
        counts every process's (`admission.limits`)."""
        return sum(job.user_id == user_id for job in self._waiting) + sum(
            job.user_id == user_id and not job.finished for job, _ in self._tasks.values()
        )

    def stats(self) -> QueueStats:
        return self.statistics.snapshot(
            uptime_s=self._clock() - self._started_at, queued=self.queued, running=self.running,
            max_concurrent=self.max_concurrent, max_queue=self.admission.max_queue,
        )

    # -- admission ---------------------------------------------------------------------------------------
    async def check_admission(self, user_id: str, *, is_admin: bool = False) -> None:
        """Raise BotRestarting / QueueFull / TooManyJobs / Cooldown if a job of this user would be refused now
        (see `commands.admission`), or StorageUnavailable if the shared limits cannot be read."""
        self._check_open()
        await self.admission.check(user_id, is_admin=is_admin)

    def _check_open(self) -> None:
        if self._closing:
            raise BotRestarting("The bot is restarting; please try again in a minute.")
        self.admission.check_queue(waiting=len(self._waiting) + self._admitting,
                                   slots_busy=len(self._tasks) >= self.max_concurrent)

    async def submit(
        self, work: Work, *, user_id: str, place: str, text: str = "", language: str = "",
        variant: str | None = None, on_progress: ProgressCallback | None = None, is_admin: bool = False,
        on_accept: Callable[[Job], None] | None = None,
    ) -> Job:
        """Admit (or raise, see `check_admission`) and enqueue a job; `work(job)` runs when a slot is free.
        The per-user limits are checked and the job recorded in one step, atomically across processes.
        `on_accept(job)` runs once the job exists, before it can start (the journal writes it down there)."""
        self._check_open()
        job_id = self._new_id()
        self._admitting += 1
        try:
            await self.admission.start(user_id, job_id, is_admin=is_admin)
        except asyncio.CancelledError:  # the caller gave up: the start may have been recorded all the same
            self.admission.release(user_id, job_id, refund=True)
            raise
        finally:
            self._admitting -= 1
        if self._closing:  # the queue began draining while the limits answered
            self.admission.release(user_id, job_id, refund=True)
            raise BotRestarting("The bot is restarting; please try again in a minute.")
        return self._enqueue(work, job_id, user_id=user_id, place=place, text=text, language=language,
                             variant=variant, on_progress=on_progress, on_accept=on_accept)

    def resume(
        self, work: Work, *, job_id: str, user_id: str, place: str, text: str, language: str,
        variant: str | None, on_progress: ProgressCallback | None = None,
    ) -> Job:
        """Enqueue a job another process accepted (`commands.job_journal`): it keeps its id and skips
        admission, since it was admitted when its user asked; raises BotRestarting while draining."""
        if self._closing:
            raise BotRestarting("The bot is restarting; please try again in a minute.")
        if job_id in self._active:
            raise ValueError(f"job {job_id} is already in the queue")
        self._recent_ids[job_id] = None
        return self._enqueue(work, job_id, user_id=user_id, place=place, text=text, language=language,
                             variant=variant, on_progress=on_progress, on_accept=None)

    def _enqueue(
        self, work: Work, job_id: str, *, user_id: str, place: str, text: str, language: str, variant: str | None,
        on_progress: ProgressCallback | None, on_accept: Callable[[Job], None] | None,
    ) -> Job:
        job = Job(
            self, job_id, user_id=user_id, place=place, text=text, language=language, variant=variant,
            created_at=self._clock(), work=work, on_progress=on_progress,
        )
        self._active[job.id] = job
        self._waiting.append(job)
        log.info("job.queued", job_id=job.id, user_id=user_id, place=place, variant=variant,
                 position=len(self._waiting), running=len(self._tasks))
        if on_accept is not None:
            on_accept(job)
        self._pump()
        return job

    def _new_id(self) -> str:
        while True:
            job_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
            if job_id not in self._active and job_id not in self._recent_ids:
                break
        self._recent_ids[job_id] = None
        if len(self._recent_ids) > 4 * self.statistics.window:
            del self._recent_ids[next(iter(self._recent_ids))]
        return job_id

    # -- running -----------------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Start waiting jobs while slots are free, then tell every waiting job whose place or queue changed
        (a new place at once; only a new queue length, held to the progress interval)."""
        while self._waiting and len(self._tasks) < self.max_concurrent and not self._closing:
            self._start(self._waiting.popleft())
        length = len(self._waiting)
        for index, job in enumerate(self._waiting):
            place = (index + 1, length)
            if job._seen_place != place:
                moved = job._seen_place is None or job._seen_place[0] != place[0]
                job._seen_place = place
                self.notifications.notify(job, urgent=moved)

    def _start(self, job: Job) -> None:
        job.started_at = self._clock()
        self.statistics.started(job.queue_wait_s)
        task = asyncio.get_running_loop().create_task(self._run(job), name=f"clone-job-{job.id}")
        self._tasks[job.id] = (job, task)
        log.info("job.started", job_id=job.id, queue_wait_s=round(job.queue_wait_s, 3))
        self._journal(job, "running")
        self._set_status(job, JobStatus.CLONING)

    async def _run(self, job: Job) -> None:
        try:
            await self._settle(job)
        except GeneratorExit:  # the event loop is gone (closed with the task pending): nothing left to tell
            self._tasks.pop(job.id, None)
            raise
        finally:
            if job.id in self._tasks:
                self._release(job)

    async def _settle(self, job: Job) -> None:
        """Run the job's work and record its outcome, whatever it is."""
        try:
            self._succeed(job, await job._work(job))
        except asyncio.CancelledError:
            if self._closing:
                self._fail(job, self._restart_error(job, started=True))
            else:
                self._fail(job, VoicebotError("it was cancelled.", code="cancelled"))
            raise
        except GeneratorExit:
            raise
        except VoicebotError as exc:
            self._fail(job, exc)
        except (KeyboardInterrupt, SystemExit):  # the process is stopping: tell the user, let it stop
            self._fail(job, UnexpectedJobError(UNEXPECTED))
            raise
        except BaseException:  # a bug, or a backend raising something exotic: the job fails, the queue goes on
            log.exception("job.crashed", job_id=job.id, user_id=job.user_id, place=job.place, variant=job.variant)
            self._fail(job, UnexpectedJobError(UNEXPECTED))

    def _release(self, job: Job) -> None:
        """The job's backend slot is free: start the next one."""
        self._tasks.pop(job.id, None)
        self._pump()

    def progress(self, job: Job, progress: Progress) -> None:
        """The backend's progress report for a running job: its stage moves the status forward (never back);
        frames are kept for `describe` and reported at the progress interval."""
        if job.id not in self._tasks or job._settled.is_set():
            return
        job.progress = progress
        status = JobStatus.GENERATING if progress.stage == "generating" else JobStatus.CLONING
        if ORDER.index(status) > ORDER.index(job.status):
            self._set_status(job, status)
        else:
            self.notifications.notify(job, urgent=False)

    def _succeed(self, job: Job, result: CloneResult) -> None:
        if job.finished:
            return
        rtf = result.real_time_factor
        job.result = result
        self.statistics.generated(rtf)
        self.admission.release(job.user_id, job.id, refund=False)
        log.info("job.generated", job_id=job.id, audio_s=round(result.audio_seconds, 2),
                 backend_s=round(result.timings.total_s, 3), rtf=round(rtf, 3) if math.isfinite(rtf) else None)
        self._journal(job, "finished")
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
            self.statistics.finished(job.total_s)
            self._active.pop(job.id, None)
            log.info("job.done", job_id=job.id, total_s=round(job.total_s, 3))
            self._journal(job, "delivered")
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
        self.statistics.failed_one()
        # the backend's, the platform's or a restart's fault gives the cooldown back: the user may retry
        self.admission.release(job.user_id, job.id, refund=not keeps_cooldown(error))
        self._active.pop(job.id, None)
        was_waiting = job in self._waiting
        if was_waiting:
            self._waiting.remove(job)
        running = self._tasks.get(job.id)
        if running is not None and running[1] is not asyncio.current_task():
            running[1].cancel()  # failed from outside (the adapter gave up): stop the backend call too
        log.info("job.failed", job_id=job.id, code=error.code, error=error.message, detail=error.detail)
        self._journal(job, "queued" if isinstance(error, JobSuspended) else "failed")
        self._set_status(job, JobStatus.FAILED)
        job._settled.set()
        job._finished.set()
        if was_waiting and not self._closing:
            self._pump()

    def _journal(self, job: Job, state: JobState) -> None:
        if self.journal is not None:
            self.journal.moved(job, state)

    def _restart_error(self, job: Job, *, started: bool) -> BotRestarting:
        """A journaled job is suspended (the next process takes it over); any other one fails for good."""
        if self.journal is not None and self.journal.keeps(job):
            return JobSuspended(f"The bot is restarting; job {job.id} will continue when it is back.")
        if started:
            return BotRestarting(f"Job {job.id} was interrupted: the bot is restarting. {RESTART_HINT}")
        return BotRestarting(f"Job {job.id} was not started: the bot is restarting. {RESTART_HINT}")

    def _set_status(self, job: Job, status: JobStatus) -> None:
        if job.status is not status:
            job.status = status
            self.notifications.notify(job)

    # -- progress callbacks ------------------------------------------------------------------------------
    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every pending progress callback and journal write has run (a job delivered is only
        over once its journal entry is gone); False if some still run at the timeout."""
        notified = await self.notifications.flush(timeout)
        journaled = self.journal is None or await self.journal.flush(timeout)
        return notified and journaled

    # -- shutdown ----------------------------------------------------------------------------------------
    async def drain(self, timeout: float = 30.0, *, notify_timeout: float = 5.0) -> DrainReport:
        """Refuse new jobs, end the queued ones at once, give running and uploading jobs `timeout` seconds to
        finish, then end what is left; their users are told. With a journal, the jobs it holds end as
        `JobSuspended` ("will continue when it is back") and stay journaled for the next process; the others
        fail with `BotRestarting` ("submit it again")."""
        self._closing = True
        if self.journal is not None:  # a job's entry still being written counts as written
            await self.journal.flush(notify_timeout)
        queued = list(self._waiting)
        for job in queued:
            self._fail(job, self._restart_error(job, started=False))
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
            self._fail(job, self._restart_error(job, started=True))
        await self.flush(timeout=notify_timeout)
        if self.journal is not None:
            await self.journal.flush(notify_timeout)
        await self.admission.flush(timeout=notify_timeout)
        report = DrainReport(finished=len(pending) - len(late), cancelled_queued=len(queued), interrupted=len(late))
        log.info("queue.drained", **report.__dict__)
        return report
