"""The audit trail and the job journal, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from tests.storage.records import ALICE, ALICE_ELSEWHERE, BOB, T0, audit_entry, journal_entry, left_over


async def test_recent_activity_is_newest_first_and_one_workspace_only(storage):
    for minutes in (0, 2, 1):
        await storage.audit.record(audit_entry(at=T0 + timedelta(minutes=minutes), job_id=f"J{minutes}"))
    await storage.audit.record(audit_entry(BOB, at=T0 + timedelta(minutes=5), job_id="B", voice_id="v1", text=None))
    await storage.audit.record(audit_entry(ALICE_ELSEWHERE, at=T0 + timedelta(minutes=9), job_id="ELSEWHERE"))

    recent = await storage.audit.recent("discord", "guild1")
    assert [entry.job_id for entry in recent] == ["B", "J2", "J1", "J0"]
    assert recent[0] == audit_entry(BOB, at=T0 + timedelta(minutes=5), job_id="B", voice_id="v1", text=None)
    assert [e.job_id for e in await storage.audit.recent("discord", "guild1", limit=2)] == ["B", "J2"]
    assert [e.job_id for e in await storage.audit.recent("discord", "guild1", user_id="222")] == ["B"]
    assert await storage.audit.recent("slack", "guild1") == []


async def test_prune_deletes_entries_older_than_the_retention(storage):
    for days in (0, 10, 40):
        await storage.audit.record(audit_entry(at=T0 - timedelta(days=days), job_id=f"D{days}"))
    assert await storage.audit.prune(T0 - timedelta(days=30)) == 1
    assert [e.job_id for e in await storage.audit.recent("discord", "guild1")] == ["D0", "D10"]
    assert await storage.audit.prune(T0 - timedelta(days=30)) == 0


async def test_the_journal_hands_a_restarted_process_what_is_unfinished(storage):
    for index, job_id in enumerate(["QUEUED", "RUNNING", "FINISHED", "DELIVERED", "FAILED"]):
        await storage.journal.accept(journal_entry(job_id, minutes=index))
    await storage.journal.accept(journal_entry("SLACKJOB", ALICE.__class__("slack", "T1", "U1")))
    await storage.journal.update("RUNNING", "running")
    await storage.journal.update("FINISHED", "finished", result_sha256="c" * 64)
    await storage.journal.update("DELIVERED", "delivered")
    await storage.journal.update("FAILED", "failed", error="backend_unavailable")

    unfinished = await left_over(storage)
    assert [(entry.job_id, entry.state) for entry in unfinished] == [
        ("QUEUED", "queued"), ("RUNNING", "running"), ("FINISHED", "finished")]
    assert unfinished[2].result_sha256 == "c" * 64
    assert unfinished[0] == journal_entry("QUEUED")  # the route's JSON and the times read back as written
    await storage.journal.forget("QUEUED")
    assert [entry.job_id for entry in await left_over(storage)] == ["RUNNING", "FINISHED"]
