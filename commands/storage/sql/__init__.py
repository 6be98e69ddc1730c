"""The stores of `commands.storage` on SQLAlchemy 2 (async): SQLite (aiosqlite; the file
`<data_dir>/voicebot.db`, created on first run) by default, PostgreSQL (asyncpg) when
`VOICEBOT_DATABASE_URL` is set, so several bot processes share one voice library and one set of limits.

    storage = await open_storage(settings)   # migrates the schema to the newest revision first
    ...
    await storage.close()

Every operation has a deadline (`VOICEBOT_DATABASE_TIMEOUT_S`) and fails as `StorageUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from functools import partial

import structlog

from commands.settings import CommandSettings
from commands.storage import Storage
from commands.storage.clip_files import FileClipStore
from commands.storage.errors import StorageUnavailable
from commands.storage.sql.api_keys import SqlApiKeyStore
from commands.storage.sql.audit import SqlAuditLog
from commands.storage.sql.database import Database, database_url
from commands.storage.sql.forget import forget_user
from commands.storage.sql.journal import SqlJobJournal
from commands.storage.sql.lease import Holder, keep_alive
from commands.storage.sql.limits import SqlLimits
from commands.storage.sql.migrate import migrate, run_migration
from commands.storage.sql.voices import SqlBlockList, SqlVoiceStore

__all__ = ["migrate", "open_storage"]
log = structlog.get_logger(__name__)

CLIPS_DIR = "clips"


async def open_storage(settings: CommandSettings, *, clock: Callable[[], float] = time.time) -> Storage:
    """Connect, migrate to the newest schema, and start renewing what this process holds (its jobs in flight,
    its journaled jobs: `lease`); `close` releases its journaled jobs for the next process. Raises
    `StorageUnavailable` when the database cannot be reached or migrated. `clock` (wall-clock seconds) is
    what leases are measured on; tests pass the job queue's fake clock."""
    database = Database(database_url(settings), timeout_s=settings.database_timeout_s)
    try:
        revision = await run_migration(database, "upgrade")
    except TypeError as exc:  # a query option in the URL that the driver's connect() does not take
        await database.dispose()
        raise StorageUnavailable(detail=f"VOICEBOT_DATABASE_URL has an option the driver does not know: {exc}"
                                 ) from exc
    except BaseException:
        await database.dispose()
        raise
    holder = Holder(clock)
    limits, journal = SqlLimits(database, holder), SqlJobJournal(database, holder)
    clips = FileClipStore(settings.data_dir / CLIPS_DIR)
    heartbeat = asyncio.get_running_loop().create_task(keep_alive([limits.renew, journal.renew]),
                                                       name="storage-heartbeat")
    log.info("storage.opened", database=database.where, revision=revision, holder=holder.id)

    async def close() -> None:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        try:  # whatever this process still holds is the next process's at once, not after STALE_S
            await journal.release()
        except StorageUnavailable:  # logged; its entries are taken over once their lease is stale
            pass
        await database.dispose()

    return Storage(
        voices=SqlVoiceStore(database), blocks=SqlBlockList(database), clips=clips, audit=SqlAuditLog(database),
        journal=journal, limits=limits, api_keys=SqlApiKeyStore(database),
        forget_user=partial(forget_user, database, clips),
        close=close,
    )
