"""The per-user limits every bot process shares: the cooldown between two jobs and the jobs in flight.

With SQLite one process holds them; with PostgreSQL every Discord shard and Slack replica counts against the
same numbers, so a user cannot double their allowance by reaching two processes.
"""

from __future__ import annotations

from typing import Protocol


class SharedLimits(Protocol):
    async def last_start(self, user_key: str) -> float | None:
        """When (wall-clock seconds) the user's last job started, if it is remembered."""

    async def start(self, user_key: str, job_id: str, at: float, *, cooldown_s: float, max_in_flight: int) -> None:
        """Atomically check and record a new job: raises `commands.errors.Cooldown` or `TooManyJobs`."""

    async def finish(self, user_key: str, job_id: str, *, refund: bool) -> None:
        """The job left the queue/backend; `refund` gives its cooldown back (the failure was not the user's)."""

    async def in_flight(self, user_key: str) -> int: ...
