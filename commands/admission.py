"""Who may start a clone job now: the per-user in-flight limit and cooldown, and the queue's length.

The per-user numbers live behind `commands.storage.limits.SharedLimits`: in the database every bot process
shares (`commands.storage.sql`, so a user cannot double their allowance by reaching two Discord shards or a
Slack replica), or in this process's memory (`LocalLimits`) for a queue opened without storage. The queue
goes through the same calls either way.

The cooldown is spam control, so it only holds against what the user did: a job that failed because of its
input keeps it, while a job that failed because of the backend, the platform or a restart gives it back (the
user was told "try again", and may).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable

import structlog

from backend.errors import InvalidInput, VoicebotError
from commands.errors import Cooldown, QueueFull, TooManyJobs
from commands.storage.limits import SharedLimits

log = structlog.get_logger(__name__)

Clock = Callable[[], float]
UNLIMITED = sys.maxsize  # an admin's in-flight limit
FORGET_AFTER = 1024  # users `LocalLimits` remembers before it drops those with nothing left to count


def keeps_cooldown(error: VoicebotError) -> bool:
    """Whether a job that failed with `error` still counts against its user's cooldown: only when the user's
    input was at fault."""
    return isinstance(error, InvalidInput)


class LocalLimits:
    """`SharedLimits` in this process's memory, for a queue opened without storage (tests, one-off CLI runs).
    Same rules as the SQL implementation; `tests/storage/test_limits.py` runs one contract against both."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._starts: dict[str, dict[str, tuple[float, bool]]] = {}  # user -> job -> (started at, in flight)

    async def last_start(self, user_key: str) -> float | None:
        return max((at for at, _ in self._starts.get(user_key, {}).values()), default=None)

    async def start(self, user_key: str, job_id: str, at: float, *, cooldown_s: float, max_in_flight: int) -> None:
        starts = self._starts.setdefault(user_key, {})
        for old, (started, in_flight) in list(starts.items()):
            if not in_flight and started <= at - cooldown_s:
                del starts[old]
        last = await self.last_start(user_key)
        if last is not None and cooldown_s > 0 and at - last < cooldown_s:
            raise Cooldown.after(cooldown_s - (at - last))
        count = sum(in_flight for _, in_flight in starts.values())
        if count >= max_in_flight:
            raise TooManyJobs.at_limit(count, max_in_flight)
        starts[job_id] = (at, True)
        if len(self._starts) > FORGET_AFTER:
            self._starts = {user: jobs for user, jobs in self._starts.items()
                            if any(in_flight or started > at - cooldown_s for started, in_flight in jobs.values())}

    async def finish(self, user_key: str, job_id: str, *, refund: bool) -> None:
        starts = self._starts.get(user_key, {})
        if job_id not in starts:
            return
        if refund:
            del starts[job_id]
        else:
            starts[job_id] = (starts[job_id][0], False)

    async def in_flight(self, user_key: str) -> int:
        return sum(in_flight for _, in_flight in self._starts.get(user_key, {}).values())


class Admission:
    """The limits one `JobQueue` admits jobs by. Admins skip the per-user limit and the cooldown, not the
    queue length.

    `release` is called from the queue's synchronous bookkeeping, so it writes in the background; the next
    check or start of the same user waits for it first, so within a process a released job is never still
    counted (the user was told the job ended). `clock` is wall-clock seconds: every process shares it.
    """

    def __init__(self, *, limits: SharedLimits, max_per_user: int, cooldown_s: float, max_queue: int,
                 clock: Clock) -> None:
        self.limits = limits
        self.max_per_user = max_per_user
        self.cooldown_s = cooldown_s
        self.max_queue = max_queue
        self._clock = clock
        self._releases: dict[str, asyncio.Task[None]] = {}  # the latest release of each user, not yet written

    def check_queue(self, *, waiting: int, slots_busy: bool) -> None:
        if waiting >= self.max_queue and slots_busy:
            raise QueueFull(f"The queue is full ({waiting} jobs waiting); please try again in a few minutes.")

    async def check(self, user_id: str, *, is_admin: bool) -> None:
        """Raise TooManyJobs / Cooldown if a job of this user would be refused now (recording nothing)."""
        if is_admin:
            return
        await self._released(user_id)
        in_flight = await self.limits.in_flight(user_id)
        if in_flight >= self.max_per_user:
            raise TooManyJobs.at_limit(in_flight, self.max_per_user)
        last = await self.limits.last_start(user_id)
        if last is not None and self.cooldown_s > 0:
            left = self.cooldown_s - (self._clock() - last)
            if left > 0:
                raise Cooldown.after(left)

    async def start(self, user_id: str, job_id: str, *, is_admin: bool) -> None:
        """Check and record the job at once (raises like `check`); it counts until `release`."""
        await self._released(user_id)
        await self.limits.start(user_id, job_id, self._clock(), cooldown_s=0.0 if is_admin else self.cooldown_s,
                                max_in_flight=UNLIMITED if is_admin else self.max_per_user)

    def release(self, user_id: str, job_id: str, *, refund: bool) -> None:
        """The job left the queue or the backend (`refund`: and gives its cooldown back); written in order."""
        previous = self._releases.get(user_id)
        task = asyncio.get_running_loop().create_task(self._release(previous, user_id, job_id, refund),
                                                      name=f"release-{job_id}")
        self._releases[user_id] = task
        task.add_done_callback(lambda done: self._forget(user_id, done))

    async def _release(self, previous: asyncio.Task[None] | None, user_id: str, job_id: str, refund: bool) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            await self.limits.finish(user_id, job_id, refund=refund)
        except VoicebotError as exc:  # StorageUnavailable, logged by the store: the row expires on its own
            log.warning("admission.release_failed", job_id=job_id, user_id=user_id, error=exc.code)
        except Exception:
            log.exception("admission.release_failed", job_id=job_id, user_id=user_id)

    def _forget(self, user_id: str, task: asyncio.Task[None]) -> None:
        if self._releases.get(user_id) is task:
            del self._releases[user_id]

    async def _released(self, user_id: str) -> None:
        pending = self._releases.get(user_id)
        if pending is not None:
            await asyncio.wait([pending])

    async def flush(self, timeout: float | None = None) -> None:
        """Wait (at most `timeout`) until every release is written: before the process closes its storage."""
        if self._releases:
            await asyncio.wait(list(self._releases.values()), timeout=timeout)
