"""The API keys' store: one key per member and workspace (a new one replaces it, even when two are issued at
once), found only by its digest, revoked per workspace, its last use recorded."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from commands.storage.sql import open_storage
from tests.storage.records import ALICE, ALICE_ELSEWHERE, BOB, T0


async def test_a_new_key_replaces_the_members_key_in_that_workspace_only(storage):
    first = await storage.api_keys.replace(ALICE, "1" * 64, "vb_one", T0)
    elsewhere = await storage.api_keys.replace(ALICE_ELSEWHERE, "2" * 64, "vb_two", T0)
    bobs = await storage.api_keys.replace(BOB, "3" * 64, "vb_bob", T0)
    second = await storage.api_keys.replace(ALICE, "4" * 64, "vb_new", T0 + timedelta(minutes=1))
    assert await storage.api_keys.find("1" * 64) is None
    assert await storage.api_keys.find("4" * 64) == second and second.id != first.id
    assert (second.member, second.prefix, second.created_at, second.last_used_at) == (ALICE, "vb_new",
                                                                                      T0 + timedelta(minutes=1), None)
    assert await storage.api_keys.find("2" * 64) == elsewhere and await storage.api_keys.find("3" * 64) == bobs


async def test_revoking_deletes_the_key_of_that_workspace(storage):
    await storage.api_keys.replace(ALICE, "1" * 64, "vb_one", T0)
    await storage.api_keys.replace(ALICE_ELSEWHERE, "2" * 64, "vb_two", T0)
    assert await storage.api_keys.revoke(ALICE) is True
    assert await storage.api_keys.revoke(ALICE) is False
    assert await storage.api_keys.find("1" * 64) is None and await storage.api_keys.find("2" * 64) is not None


async def test_the_last_use_is_recorded(storage):
    key = await storage.api_keys.replace(ALICE, "1" * 64, "vb_one", T0)
    await storage.api_keys.mark_used(key.id, T0 + timedelta(hours=1))
    assert (await storage.api_keys.find("1" * 64)).last_used_at == T0 + timedelta(hours=1)


async def test_two_processes_issuing_at_once_leave_one_key(database_settings):
    opened = [await open_storage(database_settings) for _ in range(2)]
    try:
        await asyncio.gather(*(storage.api_keys.replace(ALICE, f"{number}" * 64, "vb_x", T0)
                               for number, storage in enumerate(opened * 3)))
        found = [await opened[0].api_keys.find(f"{number}" * 64) for number in range(6)]
        assert sum(key is not None for key in found) == 1
    finally:
        for storage in opened:
            await storage.close()
