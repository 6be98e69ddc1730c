"""The voice library's use cases on the real SQLite store and file clip store, over a fake backend."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from backend.errors import BackendFailed, InvalidInput, VoicebotError
from commands.clone import CloneService
from commands.errors import PermissionDenied
from commands.jobs import JobStatus
from commands.settings import CommandSettings
from commands.storage import Storage
from commands.storage.audit import AuditEntry
from commands.storage.errors import NameTaken, StorageUnavailable
from commands.storage.sql import open_storage
from commands.storage.voices import Member
from commands.voice_library import (
    CONSENT_STATEMENT,
    Blocked,
    ClipMissing,
    SaveExpired,
    TooManyVoices,
    VoiceLibrary,
    VoiceNotFound,
)
from commands.voice_names import BadVoiceName
from tests.clips import sine_clip
from tests.fakes import FakeBackend

ALICE = Member("discord", "g1", "111")
BOB = Member("discord", "g1", "222")
ADMIN = Member("discord", "g1", "999")
ALICE_ELSEWHERE = Member("discord", "g2", "111")
CAROL_ELSEWHERE = Member("discord", "g2", "333")
CLIP = sine_clip(3.0, 44_100)
OTHER_CLIP = sine_clip(2.0, 16_000)


@dataclass
class World:
    library: VoiceLibrary
    backend: FakeBackend
    storage: Storage
    settings: CommandSettings

    async def save(self, member: Member, name: str, scope: str = "me", clip: bytes = CLIP,
                   transcript: str | None = None):
        pending = await self.library.prepare_save(member, name, scope, clip, "clip.wav", transcript)
        return await self.library.confirm_save(pending.id, member)

    async def say(self, member: Member, name: str, text: str = "Hello there", **options: Any):
        job = await self.library.say(member, name, text, place=f"test:{member.workspace_id}/c1", channel_id="c1",
                                     **options)
        return job

    async def finish(self, job) -> None:
        """The adapter's part: wait for the result and "deliver" it."""
        await job.wait()
        async with job.delivering():
            pass
        await self.library.audit.settle()


@pytest.fixture
async def make_world(tmp_path) -> AsyncIterator:
    opened: list[World] = []

    async def make(**overrides: Any) -> World:
        values: dict[str, Any] = {"data_dir": tmp_path / f"data{len(opened)}", "cooldown_s": 0.0,
                                  "max_jobs_per_user": 5, "database_timeout_s": 10.0}
        settings = CommandSettings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]
        backend = FakeBackend()
        storage = await open_storage(settings)
        world = World(VoiceLibrary(storage, CloneService(backend, settings), settings), backend, storage, settings)
        opened.append(world)
        return world

    yield make
    for world in opened:
        await world.library.aclose()
        await world.storage.close()


@pytest.fixture
async def world(make_world) -> World:
    return await make_world()


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_world(request, make_world) -> World:
    """A world on each kind of database, for the tests where the database's own behaviour matters."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return await make_world(database_url=url)


# -- saving -------------------------------------------------------------------------------------------------
async def test_save_stores_the_intake_wav_with_the_consent_confirmed(world):
    pending = await world.library.prepare_save(ALICE, "  My   Narrator ", "me", CLIP, "memo.wav", "la la")
    assert pending.statement == CONSENT_STATEMENT and pending.name == "My Narrator" and pending.key == "my narrator"
    assert await world.storage.voices.owned_by("discord", "111") == []  # nothing stored before consent

    voice = await world.library.confirm_save(pending.id, ALICE)
    assert (voice.name, voice.key, voice.scope, voice.transcript) == ("My Narrator", "my narrator", "me", "la la")
    assert voice.consent.statement == CONSENT_STATEMENT and voice.consent.confirmed_by == "discord:111"
    assert abs(voice.consent.confirmed_at - datetime.now(UTC)) < timedelta(minutes=1)
    stored = await world.storage.clips.get(voice.clip_sha256)
    assert hashlib.sha256(stored).hexdigest() == voice.clip_sha256 == hashlib.sha256(pending.wav).hexdigest()
    assert stored[:4] == b"RIFF"


@pytest.mark.parametrize(("member", "name", "scope", "clip", "error", "words"), [
    (ALICE, "**bold**", "me", CLIP, BadVoiceName, "can't contain “*”"),
    (ALICE, "<@123>", "me", CLIP, BadVoiceName, "can't contain “<”"),
    (ALICE, "x" * 33, "me", CLIP, BadVoiceName, "33 characters"),
    (ALICE, "Narrator", "everyone", CLIP, InvalidInput, "Unknown scope"),
    (Member("discord", "", "111"), "Narrator", "server", CLIP, InvalidInput, "only be saved in a server"),
    (ALICE, "Narrator", "me", sine_clip(0.5), InvalidInput, "at least 1 s"),
    (ALICE, "Narrator", "me", b"%PDF-1.7 not audio" * 100, InvalidInput, "PDF"),
    (ALICE, "Narrator", "me", b"", InvalidInput, "empty"),
])
async def test_bad_saves_are_refused_before_the_consent_form(world, member, name, scope, clip, error, words):
    with pytest.raises(error) as refused:
        await world.library.prepare_save(member, name, scope, clip, "clip.wav", None)
    assert words in refused.value.message
    assert len(world.library.pending) == 0


async def test_taken_names_blocks_and_the_per_user_limit_are_refused_before_the_clip(make_world, monkeypatch):
    world = await make_world(max_voices_per_user=2)
    await world.save(ALICE, "Narrator")
    await world.save(BOB, "Radio", "server")
    await world.library.block(ADMIN, CAROL_ELSEWHERE.user_id, is_admin=True)  # blocked in g1, not in g2
    decoded: list[bytes] = []
    monkeypatch.setattr("commands.voice_library.read_reference", lambda *args: decoded.append(args[0]))

    with pytest.raises(NameTaken, match="You already have a voice called “Narrator”"):
        await world.library.prepare_save(ALICE, "NARRATOR", "me", CLIP, None)
    with pytest.raises(NameTaken, match="This server already has a voice called “Radio”"):
        await world.library.prepare_save(ALICE, "radio", "server", CLIP, None)
    with pytest.raises(Blocked):
        await world.library.prepare_save(Member("discord", "g1", CAROL_ELSEWHERE.user_id), "Other", "me", CLIP, None)
    assert decoded == []
    monkeypatch.undo()
    await world.save(ALICE, "Second")
    await world.save(CAROL_ELSEWHERE, "Fine there")
    with pytest.raises(TooManyVoices, match="already have 2 saved voices"):
        await world.library.prepare_save(ALICE, "Third", "me", CLIP, None)


async def test_the_same_name_is_fine_in_another_scope_or_for_another_member(any_world):
    await any_world.save(ALICE, "Narrator")
    await any_world.save(BOB, "Narrator")  # Bob's own
    await any_world.save(ALICE_ELSEWHERE, "Narrator")  # another server
    await any_world.save(BOB, "Narrator", "server")  # a server voice alongside private ones
    assert len(await any_world.library.voices(ALICE)) == 2  # her own, then the server's


async def test_only_the_saver_confirms_and_only_once(world):
    pending = await world.library.prepare_save(ALICE, "Narrator", "me", CLIP, None)
    with pytest.raises(PermissionDenied, match="Only the person who started this save"):
        await world.library.confirm_save(pending.id, BOB)
    await world.library.confirm_save(pending.id, ALICE)
    with pytest.raises(SaveExpired):
        await world.library.confirm_save(pending.id, ALICE)
    assert len(await world.storage.voices.owned_by("discord", "111")) == 1


async def test_a_save_expires_after_15_minutes(world, monkeypatch):
    pending = await world.library.prepare_save(ALICE, "Narrator", "me", CLIP, None)
    later = pending.expires_at + 1
    monkeypatch.setattr("commands.pending_saves.time.monotonic", lambda: later)
    with pytest.raises(SaveExpired, match="15 minutes"):
        await world.library.confirm_save(pending.id, ALICE)
    assert await world.storage.voices.owned_by("discord", "111") == []


async def test_cancel_stores_nothing(world):
    pending = await world.library.prepare_save(ALICE, "Narrator", "me", CLIP, None)
    assert not world.library.cancel_save(pending.id, BOB)
    assert world.library.cancel_save(pending.id, ALICE)
    with pytest.raises(SaveExpired):
        await world.library.confirm_save(pending.id, ALICE)


async def test_two_saves_of_one_name_racing_end_in_one_voice_and_no_orphan_clip(any_world):
    first = await any_world.library.prepare_save(ALICE, "Narrator", "me", CLIP, None)
    second_library = VoiceLibrary(any_world.storage, any_world.library.service, any_world.settings)  # a 2nd form
    second = await second_library.prepare_save(ALICE, "narrator", "me", OTHER_CLIP, None)
    outcomes = await asyncio.gather(any_world.library.confirm_save(first.id, ALICE),
                                    second_library.confirm_save(second.id, ALICE), return_exceptions=True)
    assert sorted(type(o).__name__ for o in outcomes) == ["NameTaken", "Voice"]
    [voice] = await any_world.storage.voices.owned_by("discord", "111")
    stored = [path.name for path in (any_world.settings.data_dir / "clips").rglob("*.wav")]
    assert stored == [f"{voice.clip_sha256}.wav"]  # the loser's clip went with its failed save


async def test_a_locked_database_refuses_clearly_and_the_form_can_be_confirmed_again(make_world):
    world = await make_world(database_timeout_s=0.5)
    pending = await world.library.prepare_save(ALICE, "Narrator", "me", CLIP, None)
    lock = sqlite3.connect(world.settings.data_dir / "voicebot.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StorageUnavailable) as refused:
            await world.library.confirm_save(pending.id, ALICE)
        assert "nothing was changed" in refused.value.message
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    voice = await world.library.confirm_save(pending.id, ALICE)
    assert voice.name == "Narrator"


# -- speaking -----------------------------------------------------------------------------------------------
async def test_say_sends_the_stored_clip_byte_for_byte(world):
    voice = await world.save(ALICE, "Narrator", transcript="la la")
    job = await world.say(ALICE, "narrator", "Good evening", language="English")
    await world.finish(job)
    [call] = world.backend.calls
    assert hashlib.sha256(call.reference).hexdigest() == voice.clip_sha256  # the backend cache's key
    assert (call.text, call.ref_text, call.language) == ("Good evening", "la la", "English")
    used = await world.storage.voices.get(voice.id)
    assert used.uses == 1 and used.last_used_at is not None


async def test_say_prefers_the_members_own_voice_over_the_servers(world):
    mine = await world.save(ALICE, "Narrator", clip=CLIP)
    await world.save(BOB, "Narrator", "server", clip=OTHER_CLIP)
    await world.finish(await world.say(ALICE, "Narrator"))
    await world.finish(await world.say(Member("discord", "g1", "444"), "Narrator"))  # a third member
    sent = [hashlib.sha256(call.reference).hexdigest() for call in world.backend.calls]
    assert sent[0] == mine.clip_sha256 and sent[1] != mine.clip_sha256


@pytest.mark.parametrize("member", [BOB, ALICE_ELSEWHERE, CAROL_ELSEWHERE])
async def test_another_members_private_voice_or_another_servers_voice_is_not_found(world, member):
    await world.save(ALICE, "Private")
    await world.save(ALICE, "Server one", "server")
    for name in (["Private"] if member == BOB else ["Private", "Server one"]):
        with pytest.raises(VoiceNotFound, match="/voice list"):
            await world.say(member, name)
    assert world.backend.calls == []


async def test_a_blocked_member_cannot_say_and_unblocking_lifts_it(world):
    await world.save(BOB, "Radio", "server")
    await world.library.block(ADMIN, ALICE.user_id, is_admin=True, reason="spam")
    with pytest.raises(Blocked, match="stopped you"):
        await world.say(ALICE, "Radio")
    assert await world.library.unblock(ADMIN, ALICE.user_id, is_admin=True)
    assert not await world.library.unblock(ADMIN, ALICE.user_id, is_admin=True)
    await world.finish(await world.say(ALICE, "Radio"))
    assert len(world.backend.calls) == 1


async def test_say_checks_text_and_limits_before_the_database(world):
    await world.save(ALICE, "Narrator")
    with pytest.raises(InvalidInput, match="The text is empty"):
        await world.say(ALICE, "Nobody", "   ")  # the text is refused before the unknown voice is looked up


async def test_a_voice_deleted_while_its_job_waits_still_speaks(make_world):
    world = await make_world(max_concurrent_jobs=1)
    world.backend.hold = True
    await world.save(ALICE, "Narrator")
    first = await world.say(ALICE, "Narrator", "first")
    call = await world.backend.next_call()
    queued = await world.say(ALICE, "Narrator", "second")
    assert queued.status is JobStatus.QUEUED
    await world.library.delete(ALICE, "Narrator")
    assert await world.storage.voices.owned_by("discord", "111") == []
    call.release()
    (await world.backend.next_call()).release()
    await world.finish(first)
    await world.finish(queued)
    assert queued.status is JobStatus.DONE and [c.text for c in world.backend.calls] == ["first", "second"]
    with pytest.raises(VoiceNotFound):
        await world.say(ALICE, "Narrator")


async def test_a_missing_clip_file_is_a_clear_error(world):
    voice = await world.save(ALICE, "Narrator")
    await world.storage.clips.delete(voice.clip_sha256)
    with pytest.raises(ClipMissing, match="save the voice again"):
        await world.say(ALICE, "Narrator")


# -- the audit trail ----------------------------------------------------------------------------------------
async def test_say_and_clone_jobs_are_audited_when_they_end_with_the_text_hashed(any_world):
    voice = await any_world.save(ALICE, "Narrator")
    await any_world.finish(await any_world.say(ALICE, "Narrator", "secret words"))
    job = await any_world.library.service.submit(ALICE.key, "test:g1/c2", CLIP, "clip.wav", "one-off")
    any_world.library.record_clone(job, ALICE, "c2")
    await any_world.finish(job)
    any_world.backend.error = BackendFailed("The backend failed while generating.")
    failed = await any_world.say(ALICE, "Narrator", "broken")
    await failed.wait_finished()
    await any_world.library.audit.settle()

    newest_first = await any_world.library.recent_activity(ADMIN, 10, is_admin=True)
    assert [(e.kind, e.outcome, e.channel_id) for e in newest_first] == [
        ("say", "backend_failed", "c1"), ("clone", "done", "c2"), ("say", "done", "c1")]
    said = newest_first[2]
    assert said.text is None and said.text_sha256 == hashlib.sha256(b"secret words").hexdigest()
    assert (said.voice_id, said.voice_name, said.user_id, said.workspace_id) == (voice.id, "Narrator", "111", "g1")
    assert said.audio_seconds == 2.0 and newest_first[0].audio_seconds == 0.0
    assert await any_world.library.recent_activity(ADMIN, 10, is_admin=True, user_id="222") == []
    assert await any_world.library.recent_activity(CAROL_ELSEWHERE, 10, is_admin=True) == []  # another server's
    with pytest.raises(PermissionDenied):
        await any_world.library.recent_activity(BOB, 10, is_admin=False)


async def test_the_text_is_kept_when_configured(make_world):
    world = await make_world(audit_text="keep")
    await world.save(ALICE, "Narrator")
    await world.finish(await world.say(ALICE, "Narrator", "kept words"))
    [entry] = await world.library.recent_activity(ADMIN, is_admin=True)
    assert entry.text == "kept words"


async def test_pruning_drops_entries_past_the_retention(make_world):
    world = await make_world(audit_retention_days=7)
    now = datetime.now(UTC)
    for days, job_id in ((8, "OLD"), (6, "NEW")):
        await world.storage.audit.record(AuditEntry(
            at=now - timedelta(days=days), platform="discord", workspace_id="g1", channel_id="c1", user_id="111",
            job_id=job_id, kind="clone", voice_id=None, voice_name=None, text=None, text_sha256="0" * 64,
            outcome="done"))
    assert await world.library.audit.prune() == 1
    assert [e.job_id for e in await world.library.recent_activity(ADMIN, is_admin=True)] == ["NEW"]


# -- changing -----------------------------------------------------------------------------------------------
async def test_owners_and_admins_change_voices_and_nobody_else(world):
    await world.save(BOB, "Radio", "server")
    await world.save(BOB, "Mine")
    with pytest.raises(PermissionDenied, match="belongs to someone else"):
        await world.library.delete(ALICE, "Radio")
    with pytest.raises(PermissionDenied):
        await world.library.rename(ALICE, "Radio", "Hijacked")
    with pytest.raises(VoiceNotFound):  # an admin does not see a member's private voice
        await world.library.delete(ADMIN, "Mine", is_admin=True)
    renamed = await world.library.rename(ADMIN, "radio", "Radio Two", is_admin=True)
    assert renamed.name == "Radio Two"
    await world.library.delete(ADMIN, "Radio Two", is_admin=True)
    assert [v.name for v in await world.library.voices(BOB)] == ["Mine"]



async def test_an_admin_takes_down_a_members_private_voice_by_naming_its_owner(world):
    private = await world.save(BOB, "Mine")
    await world.save(BOB, "Radio", "server", clip=OTHER_CLIP)
    await world.save(ALICE_ELSEWHERE, "Away", clip=sine_clip(2.5, 22_050))  # another server's
    assert [v.name for v in await world.library.voices_of(ADMIN, BOB.user_id, is_admin=True)] == ["Mine", "Radio"]
    with capture_logs() as logs:
        gone = await world.library.delete(ADMIN, " MINE ", is_admin=True, owner_id=BOB.user_id)
    assert gone.id == private.id
    assert [v.name for v in await world.library.voices(BOB)] == ["Radio"]
    with pytest.raises(LookupError):  # the same deletion as the owner's own: clip and backend cache go
        await world.storage.clips.get(private.clip_sha256)
    assert world.backend.forgotten == [private.clip_sha256]
    [entry] = [e for e in logs if e["event"] == "voice.deleted"]
    assert (entry["by"], entry["owner"], entry["taken_down"], entry["scope"]) == ("discord:999", "discord:222",
                                                                                  True, "me")
    await world.library.delete(ADMIN, "radio", is_admin=True, owner_id=BOB.user_id)  # a server voice too
    assert await world.library.voices_of(ADMIN, BOB.user_id, is_admin=True) == []


@pytest.mark.parametrize("name", ["Mine", "Nothing"])
async def test_a_non_admin_naming_an_owner_is_refused_without_learning_whether_the_voice_exists(world, name):
    await world.save(BOB, "Mine")
    errors = []
    for attempt in (world.library.delete(ALICE, name, owner_id=BOB.user_id),
                    world.library.voices_of(ALICE, BOB.user_id, is_admin=False)):
        with pytest.raises(PermissionDenied) as caught:
            await attempt
        errors.append(caught.value.message)
    assert errors == ["Only server admins can do that."] * 2
    assert await world.library.autocomplete(ALICE, "", owner_id=BOB.user_id) == []
    assert [v.name for v in await world.library.voices(BOB)] == ["Mine"]


@pytest.mark.parametrize("admin", [CAROL_ELSEWHERE, Member("slack", "g1", "999")], ids=["other-server",
                                                                                         "other-platform"])
async def test_a_takedown_reaches_only_the_admins_own_workspace_and_platform(world, admin):
    await world.save(BOB, "Mine")
    assert await world.library.voices_of(admin, BOB.user_id, is_admin=True) == []
    assert await world.library.autocomplete(admin, "", owner_id=BOB.user_id, is_admin=True) == []
    with pytest.raises(VoiceNotFound, match="That member has no voice called “mine” in this server"):
        await world.library.delete(admin, "Mine", is_admin=True, owner_id=BOB.user_id)
    assert [v.name for v in await world.library.voices(BOB)] == ["Mine"]


async def test_a_takedown_needs_a_server(world):
    with pytest.raises(InvalidInput, match="in a server only"):
        await world.library.delete(Member("discord", "", "999"), "Mine", is_admin=True, owner_id=BOB.user_id)


async def test_autocomplete_for_a_takedown_lists_the_owners_voices_by_prefix(world):
    await world.save(BOB, "Mine")
    await world.save(BOB, "Mono", "server", clip=OTHER_CLIP)
    await world.save(ALICE, "Maybe")
    found = await world.library.autocomplete(ADMIN, "m", owner_id=BOB.user_id, is_admin=True)
    assert [v.name for v in found] == ["Mine", "Mono"]
    assert [v.name for v in await world.library.autocomplete(ADMIN, "mo", owner_id=BOB.user_id,
                                                            is_admin=True)] == ["Mono"]

async def test_rename_refuses_a_taken_or_bad_name(world):
    await world.save(ALICE, "One")
    await world.save(ALICE, "Two", clip=OTHER_CLIP)
    with pytest.raises(NameTaken):
        await world.library.rename(ALICE, "One", "TWO")
    with pytest.raises(BadVoiceName):
        await world.library.rename(ALICE, "One", "@here")
    assert (await world.library.rename(ALICE, "One", "one")).name == "one"  # a new spelling of the same key


async def test_deleting_the_last_voice_of_a_clip_deletes_it_everywhere(world):
    first = await world.save(ALICE, "One")
    await world.save(ALICE, "Two")  # the same clip
    await world.finish(await world.say(ALICE, "One"))
    await world.library.delete(ALICE, "One")
    assert await world.storage.clips.get(first.clip_sha256)  # still used by "Two"
    assert world.backend.forgotten == []
    await world.library.delete(ALICE, "Two")
    with pytest.raises(LookupError):
        await world.storage.clips.get(first.clip_sha256)
    assert world.backend.forgotten == [first.clip_sha256]


async def test_autocomplete_lists_own_then_server_voices_by_prefix(any_world):
    await any_world.save(ALICE, "Narrator")
    await any_world.save(BOB, "Nate", "server", clip=OTHER_CLIP)
    await any_world.save(BOB, "Nope")  # Bob's private
    assert [v.name for v in await any_world.library.autocomplete(ALICE, "  N")] == ["Narrator", "Nate"]
    assert [v.name for v in await any_world.library.autocomplete(ALICE, "nat")] == ["Nate"]
    assert await any_world.library.autocomplete(ALICE, "%") == []


# -- forget-me ----------------------------------------------------------------------------------------------
async def test_forget_me_deletes_everything_of_the_member_and_nothing_of_others(any_world):
    mine = await any_world.save(ALICE, "Narrator")
    elsewhere = await any_world.save(ALICE_ELSEWHERE, "Elsewhere", clip=OTHER_CLIP)
    bobs = await any_world.save(BOB, "Radio", "server", clip=sine_clip(2.5, 22_050))
    await any_world.finish(await any_world.say(ALICE, "Narrator"))
    await any_world.finish(await any_world.say(BOB, "Radio"))
    any_world.library.undelivered.keep("JOBA", ALICE.key, "test", b"RIFF", "no route")
    any_world.library.undelivered.keep("JOBB", BOB.key, "test", b"RIFF", "no route")
    any_world.backend.hold = True
    running = await any_world.library.service.submit(ALICE.key, "test:g1/c1", CLIP, "clip.wav", "in flight")
    await any_world.backend.next_call()
    pending = await any_world.library.prepare_save(ALICE, "Later", "me", CLIP, None)
    await any_world.library.block(ADMIN, ALICE.user_id, is_admin=True)

    report = await any_world.library.forget_me(ALICE)

    assert sorted(report.voices) == ["Elsewhere", "Narrator"]
    assert report.clips == 2 and report.audit_entries == 1 and report.undelivered == 1 and report.jobs_cancelled == 1
    assert report.cached_voices == 2
    assert any_world.backend.forgotten == sorted([mine.clip_sha256, elsewhere.clip_sha256])  # not Bob's
    assert running.status is JobStatus.FAILED and "forget you" in running.error.message
    assert "Voices deleted: 2" in report.summary()
    assert await any_world.storage.voices.owned_by("discord", "111") == []
    with pytest.raises(SaveExpired):
        await any_world.library.confirm_save(pending.id, ALICE)
    activity = await any_world.library.recent_activity(ADMIN, is_admin=True)
    assert [e.user_id for e in activity] == ["222"]
    assert await any_world.storage.clips.get(bobs.clip_sha256)
    assert [e.job_id for e in any_world.library.undelivered.entries()] == ["JOBB"]
    assert await any_world.storage.blocks.is_blocked(ALICE)  # a block on her stays


async def test_forget_me_reports_an_unreachable_backend_cache(world, monkeypatch):
    await world.save(ALICE, "Narrator")

    async def down(clip_sha256s: list[str]) -> int:
        raise BackendFailed("The backend is down.")

    monkeypatch.setattr(world.backend, "forget_voices", down)
    report = await world.library.forget_me(ALICE)
    assert report.cached_voices is None and "could not be reached" in report.summary()
    assert report.voices == ["Narrator"]


async def test_unconfirmed_saves_are_bounded_in_memory(world, monkeypatch):
    first = await world.library.prepare_save(ALICE, "One", "me", CLIP, None)
    again = await world.library.prepare_save(ALICE, "Two", "me", CLIP, None)  # replaces her first form
    with pytest.raises(SaveExpired):
        await world.library.confirm_save(first.id, ALICE)
    monkeypatch.setattr("commands.pending_saves.MAX_PENDING_BYTES", len(again.wav) + 1000)
    with pytest.raises(VoicebotError, match="Too many voices are being saved") as busy:
        await world.library.prepare_save(BOB, "Three", "me", CLIP, None)
    assert busy.value.code == "busy"
    await world.library.confirm_save(again.id, ALICE)
    assert (await world.library.prepare_save(BOB, "Three", "me", CLIP, None)).name == "Three"



async def test_a_block_placed_while_the_form_is_open_stops_the_save(world):
    pending = await world.library.prepare_save(ALICE, "Narrator", "me", CLIP, None)
    await world.library.block(ADMIN, ALICE.user_id, is_admin=True)
    with pytest.raises(Blocked):
        await world.library.confirm_save(pending.id, ALICE)
    assert await world.storage.voices.owned_by("discord", "111") == []
    assert list((world.settings.data_dir / "clips").rglob("*.wav")) == []
