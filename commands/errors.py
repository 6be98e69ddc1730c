"""Command-level failures: admission control, permissions and shutdown.

They extend `backend.errors.VoicebotError`, so the whole stack keeps one hierarchy: every adapter can catch
`VoicebotError` and show `err.message` to the user as is. Failures of a clone job that reach the user after
it was accepted also carry `job_id` (see `commands.jobs`).
"""

from __future__ import annotations

import math

from backend.errors import VoicebotError


class Cooldown(VoicebotError):
    """The user started a clone job less than `cooldown_s` ago."""

    code = "cooldown"

    def __init__(self, message: str, *, seconds_left: float = 0.0, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.seconds_left = seconds_left

    @classmethod
    def after(cls, seconds_left: float) -> Cooldown:
        wait = max(1, math.ceil(seconds_left))
        return cls(f"Slow down: you can start another voice clone in {wait} s.", seconds_left=seconds_left)


class TooManyJobs(VoicebotError):
    """The user already has the maximum number of clone jobs queued or running."""

    code = "too_many_jobs"

    @classmethod
    def at_limit(cls, in_flight: int, limit: int) -> TooManyJobs:
        return cls(f"You already have {in_flight} voice clone job{'s' if in_flight != 1 else ''} queued or "
                   f"running (the limit is {limit}); wait for one to finish.")


class QueueFull(VoicebotError):
    """The clone job would have to wait and the queue is at its configured length."""

    code = "queue_full"


class BotRestarting(VoicebotError):
    """The bot is shutting down: new jobs are refused and jobs that cannot finish are failed with this."""

    code = "restarting"


class JobSuspended(BotRestarting):
    """The bot is shutting down, but the job is journaled: the next process runs or delivers it
    (`commands.job_journal`). The job ends in this process without its journal entry being removed."""

    code = "suspended"


class PermissionDenied(VoicebotError):
    """An admin-only command was used by someone who is not an admin."""

    code = "permission_denied"


class UnexpectedJobError(VoicebotError):
    """A bug or an unforeseen failure inside a job; the details are in the log under the job id."""

    code = "unexpected"
