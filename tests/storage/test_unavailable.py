"""A database that is down, refuses connections or is locked: every operation fails within its deadline as
`StorageUnavailable` (the same message for users, the redacted cause for admins), nothing half-written stays,
and the stores work again once the database is back."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from structlog.testing import capture_logs

from commands.settings import CommandSettings
from commands.storage.errors import NameTaken, StorageUnavailable
from commands.storage.sql import open_storage
from tests.postgres_server import free_port
from tests.storage.records import ALICE, new_voice

PASSWORD = "secret-pw-123"  # in every test server URL (tests.postgres_server)


def assert_unavailable(error: StorageUnavailable) -> None:
    assert error.code == "storage_unavailable"
    assert error.message == StorageUnavailable.MESSAGE  # nothing about hosts, URLs or settings for users
    assert "nothing was changed" in error.message
    assert PASSWORD not in error.operator_text and PASSWORD not in str(error.detail)


async def test_a_server_that_is_not_there(tmp_path):
    url = f"postgresql://voicebot:{PASSWORD}@127.0.0.1:{free_port()}/voicebot?sslmode=disable"
    with capture_logs() as logs, pytest.raises(StorageUnavailable) as failed:
        await open_storage(CommandSettings(_env_file=None, data_dir=tmp_path, database_url=url, database_timeout_s=2))
    assert_unavailable(failed.value)
    assert "127.0.0.1" in failed.value.detail and "sslmode" not in failed.value.detail
    assert PASSWORD not in repr(logs)


@pytest.mark.parametrize("url", ["mysql://root:pw-of-mysql@db/voicebot", "not a url at all",
                                 "postgresql://root:pw-of-mysql@127.0.0.1:1/voicebot?no_such_option=1"])
async def test_an_unusable_url_is_refused_with_a_reason_for_admins(tmp_path, url):
    with pytest.raises(StorageUnavailable) as failed:
        await open_storage(CommandSettings(_env_file=None, data_dir=tmp_path, database_url=url))
    assert "VOICEBOT_DATABASE_URL" in failed.value.detail and "pw-of-mysql" not in failed.value.operator_text


async def test_a_locked_sqlite_file_fails_within_the_deadline_and_loses_nothing(tmp_path):
    settings = CommandSettings(_env_file=None, data_dir=tmp_path, database_timeout_s=0.5)
    storage = await open_storage(settings)
    try:
        kept = await storage.voices.add(new_voice("Kept", ALICE))
        other = sqlite3.connect(tmp_path / "voicebot.db", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        with capture_logs() as logs, pytest.raises(StorageUnavailable) as failed:
            await storage.voices.add(new_voice("Blocked", ALICE))
        assert_unavailable(failed.value)
        assert "saving a voice" in failed.value.detail and "locked" in failed.value.detail
        assert any(entry["event"] == "storage.unavailable" for entry in logs)
        other.execute("ROLLBACK")
        other.close()
        assert [v.name for v in await storage.voices.visible_to(ALICE)] == ["Kept"]  # the failed save left nothing
        assert (await storage.voices.add(new_voice("Blocked", ALICE))).name == "Blocked"  # and may be retried
        assert kept == await storage.voices.get(kept.id)
    finally:
        await storage.close()


async def test_a_locked_postgresql_table_fails_within_the_deadline(postgres_url, tmp_path):
    storage = await open_storage(CommandSettings(_env_file=None, data_dir=tmp_path, database_url=postgres_url,
                                                 database_timeout_s=0.5))
    other = await asyncpg.connect(postgres_url)
    try:
        transaction = other.transaction()
        await transaction.start()
        await other.execute("LOCK TABLE voices IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(StorageUnavailable) as failed:
            await storage.voices.add(new_voice("Blocked", ALICE))
        assert_unavailable(failed.value)
        await transaction.rollback()
        assert (await storage.voices.add(new_voice("Blocked", ALICE))).name == "Blocked"
    finally:
        await other.close()
        await storage.close()


async def test_a_database_that_goes_away_and_comes_back(postgres_url, postgres_server, tmp_path):
    storage = await open_storage(CommandSettings(_env_file=None, data_dir=tmp_path, database_url=postgres_url,
                                                 database_timeout_s=2))
    database = postgres_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(postgres_server.url())
    try:
        await storage.voices.add(new_voice("Before", ALICE))
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", database)
        for operation in (storage.voices.add(new_voice("During", ALICE)), storage.voices.resolve(ALICE, "before"),
                          storage.limits.in_flight(ALICE.key), storage.forget_user("discord", "111")):
            with pytest.raises(StorageUnavailable) as failed:
                await operation
            assert_unavailable(failed.value)
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        assert [v.name for v in await storage.voices.visible_to(ALICE)] == ["Before"]
        with pytest.raises(NameTaken):  # the library is intact: the name is still taken
            await storage.voices.add(new_voice("Before", ALICE))
    finally:
        await admin.close()
        await storage.close()


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_database_url_means_sqlite(monkeypatch, value):
    monkeypatch.setenv("VOICEBOT_DATABASE_URL", value)
    assert CommandSettings(_env_file=None).database_url is None
