"""Forget-me: every record of one user goes, other users' records stay, and blocks keep holding."""

from __future__ import annotations

from commands.storage import ForgetReport
from commands.storage.sql.forget import FORGOTTEN
from tests.storage.records import (
    ALICE, ALICE_ELSEWHERE, BOB, SLACK_ALICE, T0, audit_entry, journal_entry, left_over, new_voice,
)


async def test_forget_user_deletes_everything_of_theirs_and_nothing_else(storage):
    own_clip, shared_clip, bobs_clip = [await storage.clips.put(data) for data in (b"alice", b"shared", b"bob")]
    result = await storage.clips.put(b"a finished result waiting for delivery")
    theirs = await storage.voices.add(new_voice("Mine", ALICE, clip=own_clip))
    await storage.voices.add(new_voice("Server", ALICE_ELSEWHERE, "server", clip=shared_clip))
    bobs = await storage.voices.add(new_voice("Bobs", BOB, "server", clip=shared_clip))
    await storage.voices.add(new_voice("Bobs own", BOB, clip=bobs_clip))
    await storage.voices.add(new_voice("Slack", SLACK_ALICE, clip=bobs_clip))  # another platform: another user
    await storage.audit.record(audit_entry(ALICE, job_id="A1"))
    await storage.audit.record(audit_entry(ALICE_ELSEWHERE, job_id="A2"))
    await storage.audit.record(audit_entry(BOB, job_id="B1", voice_id=theirs.id))  # Bob spoke with Alice's voice
    await storage.audit.record(audit_entry(BOB, job_id="B2", voice_id=bobs.id))
    await storage.journal.accept(journal_entry("JA", ALICE, clip=own_clip))
    await storage.journal.update("JA", "finished", result_sha256=result)
    await storage.journal.accept(journal_entry("JB", BOB, clip=bobs_clip))
    await storage.blocks.block("discord", "guild1", "111", by=BOB.key)  # on Alice: stays
    await storage.blocks.block("discord", "guild1", "333", by=ALICE.key)  # by Alice: stays, without her name
    for number, member in enumerate([ALICE, ALICE_ELSEWHERE, BOB, SLACK_ALICE]):
        await storage.api_keys.replace(member, f"{number}" * 64, "vb_x", T0)

    report = await storage.forget_user("discord", "111")

    assert report == ForgetReport(voices=2, clips=2, audit_entries=2, journal_entries=1, blocks_made=1,
                                  api_keys=2, clip_sha256s=tuple(sorted([own_clip, shared_clip])))
    assert [await storage.api_keys.find(f"{number}" * 64) is None for number in range(4)] == [True, True, False,
                                                                                              False]
    assert await storage.voices.owned_by("discord", "111") == []
    assert [v.name for v in await storage.voices.owned_by("discord", "222")] == ["Bobs", "Bobs own"]
    assert len(await storage.voices.owned_by("slack", "111")) == 1
    for gone in (own_clip, result):
        assert not storage.clips.path(gone).exists()
    for kept in (shared_clip, bobs_clip):  # still used by Bob's voices
        assert await storage.clips.get(kept)
    audit = {entry.job_id: entry for entry in await storage.audit.recent("discord", "guild1")}
    assert set(audit) == {"B1", "B2"}
    assert (audit["B1"].voice_id, audit["B1"].voice_name) == (None, None)  # no trace of her voice
    assert audit["B2"].voice_id == bobs.id
    assert [entry.job_id for entry in await left_over(storage)] == ["JB"]
    assert await storage.blocks.is_blocked(ALICE)
    assert await storage.blocks.is_blocked(BOB.__class__("discord", "guild1", "333"))

    assert await storage.forget_user("discord", "111") == ForgetReport()  # twice: nothing left


async def test_forget_keeps_no_block_naming_them(storage):
    from sqlalchemy import select

    from commands.storage.sql.tables import blocks

    await storage.blocks.block("discord", "guild1", "333", by=ALICE.key, reason="spam")
    await storage.forget_user("discord", "111")
    async with storage.voices._db.transaction("test") as connection:
        assert (await connection.execute(select(blocks.c.blocked_by))).scalars().all() == [FORGOTTEN]
