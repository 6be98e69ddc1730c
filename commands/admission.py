"""Who may start a clone job now: the per-user in-flight limit and cooldown, and the queue's length.

The cooldown is spam control, so it only holds against what the user did: a job that failed because of its
input keeps it, while a job that failed because of the backend, the platform or a restart gives it back (the
user was told "try again", and may).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backend.errors import InvalidInput, VoicebotError
from commands.errors import Cooldown, QueueFull, TooManyJobs

Clock = Callable[[], float]
FORGET_AFTER = 1024  # users remembered before stale cooldowns are dropped


@dataclass(frozen=True)
class CooldownStart:
    """A job's start of its user's cooldown, and the start it replaced (what a refund restores)."""

    user_id: str
    at: float
    previous: float | None


def keeps_cooldown(error: VoicebotError) -> bool:
    """Whether a job that failed with `error` still counts against its user's cooldown: only when the user's
    input was at fault."""
    return isinstance(error, InvalidInput)


class Admission:
    """The limits one `JobQueue` admits jobs by. Admins skip the per-user limit and the cooldown, not the
    queue length."""

    def __init__(self, *, max_per_user: int, cooldown_s: float, max_queue: int, clock: Clock) -> None:
        self.max_per_user = max_per_user
        self.cooldown_s = cooldown_s
        self.max_queue = max_queue
        self._clock = clock
        self._last_start: dict[str, float] = {}

    def check(self, user_id: str, *, in_flight: int, waiting: int, slots_busy: bool, is_admin: bool) -> None:
        """Raise TooManyJobs / Cooldown / QueueFull if a job of this user would be refused now."""
        if not is_admin:
            if in_flight >= self.max_per_user:
                raise TooManyJobs(
                    f"You already have {in_flight} voice clone job{'s' if in_flight != 1 else ''} queued or "
                    f"running (the limit is {self.max_per_user}); wait for one to finish."
                )
            last = self._last_start.get(user_id)
            if last is not None and self.cooldown_s > 0:
                left = self.cooldown_s - (self._clock() - last)
                if left > 0:
                    raise Cooldown.after(left)
        if waiting >= self.max_queue and slots_busy:
            raise QueueFull(f"The queue is full ({waiting} jobs waiting); please try again in a few minutes.")

    def start_cooldown(self, user_id: str, now: float) -> CooldownStart:
        start = CooldownStart(user_id, now, self._last_start.get(user_id))
        self._last_start[user_id] = now
        if len(self._last_start) > FORGET_AFTER:
            self._last_start = {u: t for u, t in self._last_start.items() if now - t < self.cooldown_s}
        return start

    def refund(self, start: CooldownStart) -> None:
        """Undo `start`, unless a later job of the user has started the cooldown again since."""
        if self._last_start.get(start.user_id) != start.at:
            return
        if start.previous is None:
            del self._last_start[start.user_id]
        else:
            self._last_start[start.user_id] = start.previous
