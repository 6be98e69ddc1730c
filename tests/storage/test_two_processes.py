"""Two bot processes (two engines) on one database share one voice library: what one saves the other finds,
and racing saves of one name from both leave exactly one voice."""

from __future__ import annotations

import asyncio

import pytest

from commands.storage.errors import NameTaken
from commands.storage.sql import open_storage
from tests.storage.records import ALICE, BOB, new_voice


@pytest.fixture
async def processes(database_settings):
    opened = [await open_storage(database_settings) for _ in range(2)]
    yield opened
    for storage in opened:
        await storage.close()


async def test_what_one_process_saves_the_other_uses(processes):
    discord_shard, slack_replica = processes
    saved = await discord_shard.voices.add(new_voice("Narrator", ALICE, "server"))
    assert await slack_replica.voices.resolve(BOB, "narrator") == saved
    await slack_replica.voices.delete(saved.id)
    assert await discord_shard.voices.resolve(BOB, "narrator") is None


async def test_racing_saves_from_two_processes_keep_one(processes):
    attempts = [storage.voices.add(new_voice("Race", member, "server"))
                for storage in processes for member in (ALICE, BOB) * 3]
    outcomes = await asyncio.gather(*attempts, return_exceptions=True)
    assert sum(not isinstance(outcome, BaseException) for outcome in outcomes) == 1
    assert all(isinstance(o, NameTaken) for o in outcomes if isinstance(o, BaseException))
