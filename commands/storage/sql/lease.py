"""Leases: rows a bot process holds in the database (its jobs in flight in the shared limits, its entries in the
job journal) carry the process's `Holder` id and a `renewed_at`. The storage heartbeat (`keep_alive`, started by
`open_storage`) renews them every `HEARTBEAT_S`; a holder that stopped renewing for `STALE_S` (it crashed, or
lost its database for minutes) is taken as gone, and other processes may take its rows over.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

from commands.storage.errors import StorageUnavailable

log = structlog.get_logger(__name__)

HEARTBEAT_S = 30.0
STALE_S = 4 * HEARTBEAT_S  # three missed beats are tolerated: a slow database is not a dead process
EXPIRED = 0.0  # the `renewed_at` of a released row: stale for everyone at once


@dataclass(frozen=True)
class Holder:
    """One bot process (one `open_storage`): the id its rows carry and the wall clock (seconds, shared by
    hosts) their leases are measured on; tests pass the job queue's fake clock."""

    clock: Callable[[], float] = time.time
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def stale_before(self) -> float:
        """Rows renewed before this moment belong to a holder taken as gone."""
        return self.clock() - STALE_S


async def keep_alive(renewals: Sequence[Callable[[], Awaitable[None]]]) -> None:
    """Run every renewal each `HEARTBEAT_S` until cancelled (`open_storage` starts it; `close` stops it). A
    failed renewal is logged and retried on the next beat: the rows go stale only after `STALE_S`."""
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        for renew in renewals:
            try:
                await renew()
            except StorageUnavailable:  # logged by the database layer
                pass
            except Exception:
                log.exception("storage.renew_failed", renewal=getattr(renew, "__qualname__", repr(renew)))
