"""The one engine a process opens (SQLite file or PostgreSQL server), and the only way the stores reach it:
`Database.transaction`, which puts a deadline on the whole operation and turns every database failure into
`StorageUnavailable` (a message for users, the redacted cause for admins and logs).

SQLite: `<data_dir>/voicebot.db`, WAL (readers do not wait for the writer), a busy timeout, and every
transaction opened with BEGIN IMMEDIATE, so check-then-write operations (limits, names) are serialised across
processes that share the file. PostgreSQL: asyncpg with connect and statement timeouts; operations that must
be atomic per user take a transaction-scoped advisory lock (`lock`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from backend.redaction import redact, redact_url, register_secret
from commands.settings import CommandSettings
from commands.storage.errors import StorageUnavailable

log = structlog.get_logger(__name__)

DATABASE_FILE = "voicebot.db"
# The driver's own limits (lock wait, statement, connect) end a little before the operation's deadline, so a
# lock or a slow server surfaces as the driver's clean error, not as a cancellation mid-statement.
DRIVER_SHARE = 0.8
DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}
DB_FAILURES = (DBAPIError, PoolTimeout, TimeoutError, OSError)


def database_url(settings: CommandSettings) -> URL:
    """`VOICEBOT_DATABASE_URL` with the async driver (postgresql:// -> postgresql+asyncpg://), or the SQLite
    file under the data directory. Its password is registered with `backend.redaction` first."""
    if settings.database_url is None:
        return URL.create("sqlite+aiosqlite", database=str(settings.data_dir / DATABASE_FILE))
    raw = settings.database_url.get_secret_value()
    register_secret(raw)
    try:
        url = make_url(raw)
    except ArgumentError:
        raise StorageUnavailable(detail=f"VOICEBOT_DATABASE_URL is not a database URL: {redact_url(raw)}") from None
    register_secret(url.password if isinstance(url.password, str) else None)
    driver = DRIVERS.get(url.drivername.split("+", 1)[0])
    if driver is None:
        raise StorageUnavailable(
            detail=f"VOICEBOT_DATABASE_URL must be postgresql:// or sqlite://, not {url.drivername}://")
    url = url.set(drivername=driver)
    if "sslmode" in url.query:  # libpq's spelling, which asyncpg calls `ssl` (same values)
        url = url.difference_update_query(["sslmode"]).update_query_dict({"ssl": url.query["sslmode"]})
    return url


def shown(url: URL) -> str:
    """The database as admins and logs see it: the SQLite file, or the server's URL without password or query."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database or ':memory:'}"
    return redact_url(url.render_as_string(hide_password=True))


class Database:
    """The process's engine, its deadline, and the failure mapping every store goes through."""

    def __init__(self, url: URL, *, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.where = shown(url)
        self.dialect = url.get_backend_name()
        driver_s = timeout_s * DRIVER_SHARE
        options: dict[str, Any] = {"hide_parameters": True, "pool_timeout": driver_s}
        if self.dialect == "sqlite":
            if url.database:
                private_file(Path(url.database))
            options["connect_args"] = {"timeout": driver_s}
        else:
            options["pool_pre_ping"] = True  # a restarted server's dead connections are replaced, not reported
            options["connect_args"] = {"timeout": driver_s, "command_timeout": driver_s}
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine, busy_ms=int(driver_s * 1000))

    @asynccontextmanager
    async def transaction(self, operation: str, *, timeout_s: float | None = None
                          ) -> AsyncIterator[AsyncConnection]:
        """One transaction under the deadline (`timeout_s`, else the configured one); committed when the body
        returns, rolled back when it raises. Database failures become `StorageUnavailable`; the body's own
        errors (NameTaken, Cooldown) pass."""
        try:
            async with asyncio.timeout(timeout_s or self.timeout_s):
                async with self.engine.begin() as connection:
                    yield connection
        except DB_FAILURES as exc:
            raise self.unavailable(operation, exc) from exc

    def unavailable(self, operation: str, exc: BaseException) -> StorageUnavailable:
        """The error users see for `exc`, with the redacted cause for admins; logged here once."""
        cause = getattr(exc, "orig", None) or exc
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {self.timeout_s:g} s (VOICEBOT_DATABASE_TIMEOUT_S)"
        detail = redact(f"{operation} failed on {self.where}: {type(cause).__name__}: {reason}"[:400])
        log.warning("storage.unavailable", operation=operation, detail=detail)
        return StorageUnavailable(detail=detail)

    async def lock(self, connection: AsyncConnection, name: str) -> None:
        """Serialise this transaction with every other one taking the lock `name` (in any process) until it
        ends. SQLite transactions are already serialised by BEGIN IMMEDIATE."""
        if self.dialect == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    async def dispose(self) -> None:
        await self.engine.dispose()


def private_file(path: Path) -> None:
    """Create the database file readable by this user only (it holds who said what, and consent records);
    SQLite gives its -wal and -shm files the same permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _sqlite_setup(engine: AsyncEngine, *, busy_ms: int) -> None:
    """WAL, foreign keys and the busy timeout on every connection; BEGIN IMMEDIATE for every transaction
    (SQLAlchemy's recipe: the driver's own implicit BEGIN is turned off)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", f"busy_timeout={busy_ms}"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
