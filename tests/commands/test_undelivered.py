"""Undelivered results are kept on disk, listed newest first and bounded in count and bytes."""

from __future__ import annotations

from commands.undelivered import UndeliveredStore


def test_keep_and_list_newest_first(tmp_path) -> None:
    store = UndeliveredStore(tmp_path)
    store.keep("J1AAAA", "discord:1", "discord:9/8", b"RIFF-one", "followup, channel and DM refused")
    store.keep("J2BBBB", "slack:U1", "slack:T1/C1", b"RIFF-two", "upload and DM failed")
    entries = store.entries()
    assert [entry.job_id for entry in entries] == ["J2BBBB", "J1AAAA"]
    assert entries[0].wav.read_bytes() == b"RIFF-two" and entries[0].user_id == "slack:U1"


def test_bounded_by_count_and_bytes(tmp_path) -> None:
    store = UndeliveredStore(tmp_path, max_items=2, max_bytes=10)
    for index in range(4):
        store.keep(f"J{index}", "u", "p", b"12345", "r")
    assert [entry.job_id for entry in store.entries()] == ["J3", "J2"]
    store.keep("BIG", "u", "p", b"x" * 8, "r")  # 8 + 5 > 10: the older one goes
    assert [entry.job_id for entry in store.entries()] == ["BIG"]


def test_hostile_job_ids_stay_inside_the_directory(tmp_path) -> None:
    entry = UndeliveredStore(tmp_path / "kept").keep("../../etc/passwd", "u", "p", b"a", "r")
    assert entry.wav.parent == tmp_path / "kept"


def test_unreadable_metadata_is_skipped(tmp_path) -> None:
    store = UndeliveredStore(tmp_path)
    store.keep("J1", "u", "p", b"a", "r")
    (tmp_path / "junk.json").write_text("{not json")
    assert [entry.job_id for entry in store.entries()] == ["J1"]
