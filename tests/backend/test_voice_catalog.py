"""The directory-backed voice catalog (`backend.voice_catalog.directory`): saves are atomic and exclusive,
names are bounded and case-insensitive, records are read with a cap, and the sync hooks run when they should."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.errors import InvalidInput
from backend.voice_catalog import (
    CONSENT_ID,
    CONSENT_STATEMENT,
    CONSENT_VERSION,
    Consent,
    DirectoryVoiceCatalog,
    VoiceLimitReached,
    VoiceNameTaken,
    check_voice_name,
)
from backend.voice_catalog import directory
from tests.clips import sine_clip

CALLER = "token:0123456789ab"
CLIP = sine_clip(seconds=1.5)


def consent(at: datetime | None = None) -> Consent:
    return Consent(CONSENT_ID, CONSENT_VERSION, CONSENT_STATEMENT, CALLER, at or datetime.now(UTC))


def test_a_saved_voice_is_found_by_name_in_any_case_with_its_clip_and_consent(tmp_path):
    catalog = DirectoryVoiceCatalog(tmp_path / "voices")
    saved = catalog.add(CALLER, "Ana_2", CLIP, "A test tone.", consent())
    assert (saved.id, saved.name, saved.ref_text) == ("ana_2", "Ana_2", "A test tone.")
    found = DirectoryVoiceCatalog(tmp_path / "voices").find("someone-else", "ANA_2")  # a fresh process's view
    assert found == saved
    assert catalog.clip(found) == CLIP
    assert found.consent.statement == CONSENT_STATEMENT and found.consent.confirmed_by == CALLER
    assert catalog.find(CALLER, "bob") is None and catalog.find(CALLER, "../ana_2") is None


def test_the_list_is_oldest_first_and_skips_what_is_not_a_voice(tmp_path):
    catalog = DirectoryVoiceCatalog(tmp_path)
    catalog.add(CALLER, "late", CLIP, None, consent(datetime(2026, 2, 1, tzinfo=UTC)))
    catalog.add(CALLER, "early", CLIP, None, consent(datetime(2026, 1, 1, tzinfo=UTC)))
    (tmp_path / "stray.txt").write_text("not a voice")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / directory.RECORD_FILE).write_text("{not json")
    (tmp_path / "huge").mkdir()
    (tmp_path / "huge" / directory.RECORD_FILE).write_bytes(b" " * (directory.MAX_RECORD_BYTES + 1))
    (tmp_path / "early" / directory.RECORD_FILE).rename(tmp_path / "moved.json")  # a record of another name
    (tmp_path / "imposter").mkdir()
    (tmp_path / "moved.json").rename(tmp_path / "imposter" / directory.RECORD_FILE)
    assert [voice.id for voice in catalog.list(CALLER)] == ["late"]
    assert DirectoryVoiceCatalog(tmp_path / "missing").list(CALLER) == []


def test_a_name_is_saved_once_even_by_racing_savers(tmp_path):
    catalog = DirectoryVoiceCatalog(tmp_path)
    catalog.add(CALLER, "taken", CLIP, None, consent())
    with pytest.raises(VoiceNameTaken):
        catalog.add(CALLER, "TAKEN", CLIP, None, consent())
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def save(index: int) -> None:
        racer = DirectoryVoiceCatalog(tmp_path)  # one catalog each: as separate processes, no shared lock
        barrier.wait()
        try:
            racer.add(CALLER, "race", CLIP, f"saver {index}", consent())
            outcomes.append("saved")
        except VoiceNameTaken:
            outcomes.append("taken")

    threads = [threading.Thread(target=save, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["saved"] + ["taken"] * 7
    assert [path.name for path in sorted(tmp_path.iterdir())] == [".staging", "race", "taken"]
    assert list((tmp_path / ".staging").iterdir()) == []  # nothing half-written left behind


def test_a_failed_save_leaves_no_voice(tmp_path, monkeypatch):
    catalog = DirectoryVoiceCatalog(tmp_path)
    real_write = directory._write_synced

    def failing(path: Path, data: bytes) -> None:
        if path.name == directory.RECORD_FILE:
            raise OSError("disk full")
        real_write(path, data)

    monkeypatch.setattr(directory, "_write_synced", failing)
    with pytest.raises(OSError, match="disk full"):
        catalog.add(CALLER, "partial", CLIP, None, consent())
    assert catalog.list(CALLER) == [] and catalog.find(CALLER, "partial") is None
    assert list((tmp_path / ".staging").iterdir()) == []


def test_the_catalog_is_bounded(tmp_path):
    catalog = DirectoryVoiceCatalog(tmp_path, max_voices=2)
    catalog.add(CALLER, "one", CLIP, None, consent())
    catalog.add(CALLER, "two", CLIP, None, consent())
    with pytest.raises(VoiceLimitReached):
        catalog.add(CALLER, "three", CLIP, None, consent())


def test_saves_are_published_and_misses_refresh_at_most_every_interval(tmp_path):
    calls: list[str] = []
    catalog = DirectoryVoiceCatalog(tmp_path, on_changed=lambda: calls.append("commit"),
                                    refresh=lambda: calls.append("reload"), refresh_every_s=3600)
    catalog.add(CALLER, "one", CLIP, None, consent())
    assert calls == ["commit"]
    assert catalog.find(CALLER, "one") is not None and calls == ["commit"]  # a hit needs no reload
    assert catalog.find(CALLER, "other") is None and calls == ["commit", "reload"]
    assert catalog.find(CALLER, "other") is None and catalog.list(CALLER) and calls == ["commit", "reload"]


def test_a_deleted_voice_is_gone_clip_and_record(tmp_path):
    calls: list[str] = []
    catalog = DirectoryVoiceCatalog(tmp_path, on_changed=lambda: calls.append("commit"))
    saved = catalog.add(CALLER, "Gone", CLIP, None, consent())
    assert catalog.delete(CALLER, "GONE") == saved and calls == ["commit", "commit"]
    assert catalog.find(CALLER, "gone") is None and catalog.list(CALLER) == []
    assert [path.name for path in tmp_path.iterdir()] == [".staging"] and not any((tmp_path / ".staging").iterdir())
    assert catalog.delete(CALLER, "gone") is None and catalog.delete(CALLER, "../x") is None
    assert catalog.add(CALLER, "gone", CLIP, None, consent()).id == "gone"  # the name is free again


def test_a_failing_refresh_reads_the_directory_as_it_is(tmp_path):
    def broken() -> None:
        raise RuntimeError("volume unreachable")

    catalog = DirectoryVoiceCatalog(tmp_path, refresh=broken)
    catalog.add(CALLER, "one", CLIP, None, consent())
    assert [voice.id for voice in catalog.list(CALLER)] == ["one"]


@pytest.mark.parametrize("name", ["ana", "A", "x" * 64, "voice-1_b", "0"])
def test_valid_names(name):
    assert check_voice_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 65, "../etc", ".hidden", "-dash", "a b", "a/b", "a\\b", "café", "a\n",
                                  "_x", "con.wav"])
def test_invalid_names_are_refused(name):
    with pytest.raises(InvalidInput) as caught:
        check_voice_name(name)
    assert caught.value.code == "invalid_voice_name"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_no_name_writes_outside_the_catalog(tmp_path_factory, name):
    """Whatever a caller names a voice, it is refused or lands in its own directory directly under the root."""
    root = tmp_path_factory.mktemp("catalog")
    catalog = DirectoryVoiceCatalog(root)
    try:
        saved = catalog.add(CALLER, name, b"RIFF", None, consent())
    except InvalidInput:
        assert not any(path.name != ".staging" for path in root.iterdir())
        return
    assert [path.name for path in root.iterdir() if path.name != ".staging"] == [saved.id]
    assert (root / saved.id).resolve().parent == root.resolve()
