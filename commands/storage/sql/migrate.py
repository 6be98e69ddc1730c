"""Schema migrations, run from code: `open_storage` upgrades to the newest revision before any store is used,
and `migrate` is what a `voicebot db upgrade|downgrade` command calls.

The migrations are Alembic scripts packaged in `migrations/versions/`; they run inside one transaction that
holds a lock, so bot processes starting together against one PostgreSQL database migrate it once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from commands.settings import CommandSettings
from commands.storage.sql.database import Database, database_url

SCRIPTS = Path(__file__).resolve().parent / "migrations"
LOCK = "voicebot:migrations"
TIMEOUT_S = 120.0  # a migration may wait for another process's, and rewrite tables


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def run_migration(database: Database, action: Literal["upgrade", "downgrade"],
                        revision: str = "head") -> str | None:
    """Move the schema to `revision` ("head", "base", "0001", "-1"); returns the revision it is at after."""

    def migrate(connection: Connection) -> str | None:
        getattr(command, action)(_config(connection), revision)
        return _current(connection)

    async with database.transaction(f"{action} of the schema to {revision}", timeout_s=TIMEOUT_S) as connection:
        await database.lock(connection, LOCK)
        return await connection.run_sync(migrate)


async def migrate(settings: CommandSettings, action: Literal["upgrade", "downgrade"], revision: str = "head"
                  ) -> str | None:
    """For the CLI: `voicebot db upgrade [REV]` / `voicebot db downgrade REV` on the configured database.
    Returns the revision the database is at afterwards (None: empty)."""
    database = Database(database_url(settings), timeout_s=settings.database_timeout_s)
    try:
        return await run_migration(database, action, revision)
    finally:
        await database.dispose()
