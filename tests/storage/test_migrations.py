"""The Alembic migrations: up to head builds exactly the schema the stores use, down to base removes it, and
up again works; the CLI's `migrate` reports where the database is."""

from __future__ import annotations

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect

from commands.storage.sql import migrate, open_storage
from commands.storage.sql.database import Database, database_url
from commands.storage.sql.journal import FIELDS
from commands.storage.sql.tables import journal, metadata
from tests.storage.records import ALICE, T0, journal_entry, new_voice

TABLES = {"voices", "blocks", "audit_entries", "journal", "job_starts", "api_keys"}


async def schema(settings) -> tuple[set[str], list[object]]:
    """The tables in the database, and how they differ from `tables.metadata` (empty: identical)."""
    database = Database(database_url(settings), timeout_s=30)
    try:
        async with database.engine.connect() as connection:
            return await connection.run_sync(lambda sync: (
                set(inspect(sync).get_table_names()) - {"alembic_version"},
                compare_metadata(MigrationContext.configure(sync), metadata)))
    finally:
        await database.dispose()


async def test_up_down_and_up_again(database_settings):
    assert await migrate(database_settings, "upgrade") == "0003"
    tables, differences = await schema(database_settings)
    assert tables == TABLES
    assert differences == []  # the migrations build exactly what tables.py declares

    assert await migrate(database_settings, "downgrade", "base") is None
    assert (await schema(database_settings))[0] == set()

    storage = await open_storage(database_settings)  # opening upgrades again
    try:
        await storage.voices.add(new_voice("Back", ALICE))
        assert (await storage.voices.resolve(ALICE, "back")).name == "Back"
    finally:
        await storage.close()


async def test_processes_starting_together_migrate_once(database_settings):
    opened = await asyncio.gather(*(open_storage(database_settings) for _ in range(3)))
    try:
        assert all([await storage.voices.visible_to(ALICE) == [] for storage in opened])
    finally:
        for storage in opened:
            await storage.close()



async def test_jobs_journaled_before_leases_are_taken_over_after_the_upgrade(database_settings):
    """0002 gives journal entries a holder: those written under 0001 have none, so the first process to start on
    the upgraded database resumes them; a downgrade to 0001 keeps them."""
    assert await migrate(database_settings, "upgrade", "0001") == "0001"
    old = journal_entry("OLD")
    database = Database(database_url(database_settings), timeout_s=30)
    try:
        async with database.transaction("journaling under 0001") as connection:  # only 0001's columns
            await connection.execute(insert(journal).values({name: getattr(old, name) for name in FIELDS}))
    finally:
        await database.dispose()

    storage = await open_storage(database_settings)
    try:
        assert await storage.journal.unfinished("discord") == [old]
    finally:
        await storage.close()
    assert await migrate(database_settings, "downgrade", "0001") == "0001"
    assert await migrate(database_settings, "upgrade") == "0003"
    storage = await open_storage(database_settings)
    try:
        assert await storage.journal.unfinished("discord") == [old]
    finally:
        await storage.close()


async def test_0003_adds_the_api_keys_and_its_downgrade_drops_only_them(database_settings):
    """Keys issued under 0003 are found by their digest; a downgrade to 0002 drops the keys' table (they are
    issued again: nothing else refers to them) and leaves the voices."""
    storage = await open_storage(database_settings)
    try:
        await storage.voices.add(new_voice("Kept", ALICE))
        issued = await storage.api_keys.replace(ALICE, "a" * 64, "vb_abcd", T0)
        assert await storage.api_keys.find("a" * 64) == issued
    finally:
        await storage.close()
    assert await migrate(database_settings, "downgrade", "0002") == "0002"
    tables, _ = await schema(database_settings)
    assert tables == TABLES - {"api_keys"}
    assert await migrate(database_settings, "upgrade") == "0003"
    storage = await open_storage(database_settings)
    try:
        assert await storage.api_keys.find("a" * 64) is None
        assert (await storage.voices.resolve(ALICE, "kept")).name == "Kept"
    finally:
        await storage.close()
