"""A job's progress callback, run as the queue's jobs change, paced and never twice at once.

Every call ends as a rate-limited chat message edit, so: status changes and queue places run the callback at once
(`urgent`); the queue's length and the backend's generation progress at most every `interval_s`, the latest state
arriving at the end of the interval. Calls run in a background task per job, coalesced (a slow callback sees the
latest state, not every step); the final DONE/FAILED always arrives. A callback may be a plain function or a
coroutine function; its errors are logged, never raised into the job.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from commands.clone_job import Job

log = structlog.get_logger(__name__)


class ProgressNotifier:
    """The progress callbacks of one queue's jobs. Must be used from the queue's event loop."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._running: set[asyncio.Task[None]] = set()

    def notify(self, job: Job, *, urgent: bool = True) -> None:
        """Run the job's progress callback now, or, when not `urgent` and the last run is more recent than the
        interval, once at the end of the interval."""
        if job._on_progress is None:
            return
        loop = asyncio.get_running_loop()
        if not urgent:
            due = job._notified_at + self.interval_s - loop.time()
            if due > 0:
                if job._refresh is None:
                    job._refresh = loop.call_later(due, self.notify, job)
                return
        if job._refresh is not None:
            job._refresh.cancel()
            job._refresh = None
        job._notified_at = loop.time()
        job._dirty = True
        if job._notifier is None or job._notifier.done():
            task = loop.create_task(self._deliver(job), name=f"clone-job-{job.id}-progress")
            job._notifier = task
            self._running.add(task)
            task.add_done_callback(self._running.discard)

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
        while self._running:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(list(self._running), timeout=left)
        return True
