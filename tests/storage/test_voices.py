"""Saved voices and blocks, on SQLite and PostgreSQL: names, visibility, races, renames and counts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from commands.storage.errors import NameTaken
from tests.storage.records import (
    ALICE, ALICE_ELSEWHERE, BOB, CLIP, SLACK_ALICE, T0, journal_entry, left_over, new_voice,
)


async def test_a_saved_voice_reads_back_with_its_consent(storage):
    saved = await storage.voices.add(new_voice("Narrator"))
    assert (saved.name, saved.key, saved.owner, saved.scope, saved.uses) == ("Narrator", "narrator", ALICE, "me", 0)
    assert saved.consent.statement == "It is my own voice (v1)." and saved.consent.confirmed_by == "discord:111"
    assert saved.consent.confirmed_at == T0 and saved.created_at.tzinfo is not None
    assert await storage.voices.get(saved.id) == saved
    assert await storage.voices.get("nope") is None


async def test_resolve_finds_the_members_own_voice_before_the_servers(storage):
    server = await storage.voices.add(new_voice("Narrator", BOB, "server"))
    assert await storage.voices.resolve(ALICE, "narrator") == server
    own = await storage.voices.add(new_voice("Narrator", ALICE))
    assert await storage.voices.resolve(ALICE, "narrator") == own
    assert await storage.voices.resolve(BOB, "narrator") == server


async def test_a_private_voice_is_seen_by_its_owner_in_its_workspace_only(storage):
    await storage.voices.add(new_voice("Secret", ALICE))
    assert await storage.voices.resolve(BOB, "secret") is None  # another user's private voice
    assert await storage.voices.resolve(ALICE_ELSEWHERE, "secret") is None
    assert await storage.voices.resolve(SLACK_ALICE, "secret") is None
    assert await storage.voices.visible_to(BOB) == []


@pytest.mark.parametrize("first, second, taken", [
    (("Narrator", ALICE, "me"), ("narrator", ALICE, "me"), True),
    (("Narrator", ALICE, "server"), ("Narrator", BOB, "server"), True),
    (("Narrator", ALICE, "me"), ("Narrator", BOB, "me"), False),  # each owner's own names
    (("Narrator", ALICE, "me"), ("Narrator", ALICE, "server"), False),  # own voices win on lookup
    (("Narrator", ALICE, "me"), ("Narrator", ALICE_ELSEWHERE, "me"), False),
])
async def test_names_are_unique_where_the_voice_would_be_visible(storage, first, second, taken):
    await storage.voices.add(new_voice(*first))
    if taken:
        with pytest.raises(NameTaken, match="already a voice called “.arrator”") as refused:
            await storage.voices.add(new_voice(*second))
        assert refused.value.code == "name_taken"
    else:
        await storage.voices.add(new_voice(*second))


async def test_concurrent_saves_of_one_name_keep_exactly_one(storage):
    outcomes = await asyncio.gather(*(storage.voices.add(new_voice("Race", ALICE, "server")) for _ in range(8)),
                                    return_exceptions=True)
    assert sum(not isinstance(outcome, BaseException) for outcome in outcomes) == 1
    assert all(isinstance(outcome, NameTaken) for outcome in outcomes if isinstance(outcome, BaseException))
    assert [voice.name for voice in await storage.voices.visible_to(BOB)] == ["Race"]


async def test_visible_to_lists_own_voices_first_and_filters_by_prefix(storage):
    await storage.voices.add(new_voice("Zed", ALICE))
    await storage.voices.add(new_voice("Alpha", BOB, "server"))
    await storage.voices.add(new_voice("Zebra", BOB, "server"))
    await storage.voices.add(new_voice("Bob's", BOB))
    assert [v.name for v in await storage.voices.visible_to(ALICE)] == ["Zed", "Alpha", "Zebra"]
    assert [v.name for v in await storage.voices.visible_to(ALICE, "ze")] == ["Zed", "Zebra"]
    assert [v.name for v in await storage.voices.visible_to(ALICE, "", limit=1)] == ["Zed"]


@pytest.mark.parametrize("prefix", ["%", "_", "\\", "z%", "'; drop table voices; --"])
async def test_a_prefix_is_text_never_a_pattern(storage, prefix):
    await storage.voices.add(new_voice("Zed", ALICE))
    assert await storage.voices.visible_to(ALICE, prefix) == []
    assert len(await storage.voices.visible_to(ALICE)) == 1


async def test_rename_checks_the_new_name(storage):
    first = await storage.voices.add(new_voice("One", ALICE, "server"))
    await storage.voices.add(new_voice("Two", BOB, "server"))
    renamed = await storage.voices.rename(first.id, "Uno", "uno")
    assert (renamed.name, renamed.key, renamed.id) == ("Uno", "uno", first.id)
    assert (await storage.voices.rename(first.id, "UNO", "uno")).name == "UNO"  # its own name, spelled anew
    with pytest.raises(NameTaken):
        await storage.voices.rename(first.id, "Two", "two")
    assert (await storage.voices.get(first.id)).name == "UNO"
    await storage.voices.delete(first.id)
    with pytest.raises(LookupError):
        await storage.voices.rename(first.id, "Three", "three")


async def test_delete_count_use_and_references(storage):
    one = await storage.voices.add(new_voice("One"))
    await storage.voices.add(new_voice("Two", clip="b" * 64))
    await storage.voices.add(new_voice("Three", ALICE_ELSEWHERE))
    assert await storage.voices.count_owned(ALICE) == 2
    assert [v.name for v in await storage.voices.owned_by("discord", "111")] == ["One", "Two", "Three"]
    await storage.voices.mark_used(one.id, T0 + timedelta(hours=1))
    await storage.voices.mark_used(one.id, T0 + timedelta(hours=2))
    used = await storage.voices.get(one.id)
    assert (used.uses, used.last_used_at) == (2, T0 + timedelta(hours=2))
    assert await storage.voices.references(CLIP) == 2
    assert await storage.voices.delete(one.id) is True
    assert await storage.voices.delete(one.id) is False
    assert await storage.voices.references(CLIP) == 1


async def test_a_clip_a_journaled_job_still_needs_is_referenced(storage):
    """A voice deleted while its job is queued: the clip stays until the job is done (a restart resumes it)."""
    voice = await storage.voices.add(new_voice("One"))
    await storage.journal.accept(journal_entry("J1"))
    await storage.voices.delete(voice.id)
    assert await storage.voices.references(CLIP) == 1
    await storage.journal.update("J1", "delivered")
    assert await storage.voices.references(CLIP) == 0


async def test_blocks_hold_per_workspace_and_lift(storage):
    assert not await storage.blocks.is_blocked(BOB)
    await storage.blocks.block("discord", "guild1", "222", by=ALICE.key, reason="spam")
    await storage.blocks.block("discord", "guild1", "222", by=ALICE.key, reason="again")  # twice is fine
    assert await storage.blocks.is_blocked(BOB)
    assert not await storage.blocks.is_blocked(ALICE)
    assert await storage.blocks.unblock("discord", "guild1", "222") is True
    assert await storage.blocks.unblock("discord", "guild1", "222") is False
    assert not await storage.blocks.is_blocked(BOB)


@pytest.mark.parametrize("odd", ["nul\x00inside", "lone \ud800 surrogate", "x" * 5000, "emoji 🎙️ and RTL \u202e"])
async def test_odd_text_is_stored_never_reported_as_an_outage(storage, odd):
    """Text a user typed reaches the stores (journal text, transcripts, names checked elsewhere): both databases
    take it the same way; NUL and lone surrogates, which no UTF-8 database stores, become U+FFFD."""
    from dataclasses import replace

    await storage.journal.accept(replace(journal_entry("ODD"), text=odd, transcript=odd))
    stored = (await left_over(storage))[0]
    expected = odd.replace("\x00", "\ufffd").replace("\ud800", "\ufffd")
    assert (stored.text, stored.transcript) == (expected, expected)
    voice = await storage.voices.add(new_voice(odd[:40]))
    assert (await storage.voices.get(voice.id)).name == expected[:40]
