"""The file ClipStore: content addressing, atomic writes, the size bound, and names from outside."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.errors import InvalidInput
from commands.storage.clip_files import FileClipStore
from commands.storage.errors import StorageUnavailable


@pytest.fixture
def clips(tmp_path) -> FileClipStore:
    return FileClipStore(tmp_path / "clips", max_bytes=1000)


async def test_a_clip_is_stored_once_under_its_digest(clips):
    wav = b"RIFF" + bytes(range(200))
    digest = await clips.put(wav)
    assert digest == hashlib.sha256(wav).hexdigest()
    assert await asyncio.gather(*(clips.put(wav) for _ in range(5))) == [digest] * 5
    assert await clips.get(digest) == wav
    assert [path.name for path in clips.directory.rglob("*")] == [digest[:2], f"{digest}.wav"]  # no temp files
    assert await clips.delete(digest) is True
    assert await clips.delete(digest) is False
    with pytest.raises(LookupError):
        await clips.get(digest)


async def test_the_size_bound_holds_on_the_way_in_and_out(clips):
    with pytest.raises(InvalidInput) as refused:
        await clips.put(b"x" * 1001)
    assert refused.value.code == "clip_too_large"
    digest = await clips.put(b"x" * 1000)
    clips.path(digest).write_bytes(b"x" * 5000)  # grown on disk behind the store's back
    with pytest.raises(LookupError):
        await clips.get(digest)


async def test_a_damaged_file_is_reported_gone_not_served(clips):
    digest = await clips.put(b"the real clip")
    clips.path(digest).write_bytes(b"something else")
    with pytest.raises(LookupError):
        await clips.get(digest)


@settings(max_examples=200, deadline=None)
@given(name=st.one_of(st.text(max_size=80), st.sampled_from(["../../etc/passwd", "A" * 64, "a" * 63, "/" + "a" * 64,
                                                              "a" * 64 + "\n", "..", ""])))
def test_names_that_are_not_digests_are_refused(name):
    """`path` is the one gate `get` and `delete` go through."""
    if len(name) == 64 and set(name) <= set("0123456789abcdef"):
        return
    with pytest.raises(LookupError):
        FileClipStore(Path("/nonexistent/clips")).path(name)


async def test_get_and_delete_refuse_a_path_from_outside(clips, tmp_path):
    (tmp_path / "secret.wav").write_bytes(b"not a clip")
    for name in ("../secret", "../../secret.wav", str(tmp_path / "secret.wav")):
        with pytest.raises(LookupError):
            await clips.get(name)
        assert await clips.delete(name) is False
    assert (tmp_path / "secret.wav").exists()


async def test_a_disk_failure_is_storage_unavailable(tmp_path):
    (tmp_path / "clips").write_text("a file where the directory should be")
    store = FileClipStore(tmp_path / "clips")
    with pytest.raises(StorageUnavailable) as failed:
        await store.put(b"clip")
    assert "nothing was changed" in failed.value.message and "storing a clip" in failed.value.detail


async def test_clips_and_the_database_are_readable_by_their_owner_only(tmp_path):
    from commands.settings import CommandSettings
    from commands.storage.sql import open_storage

    storage = await open_storage(CommandSettings(_env_file=None, data_dir=tmp_path / "data"))
    try:
        digest = await storage.clips.put(b"a voice")
        assert storage.clips.path(digest).stat().st_mode & 0o077 == 0
        assert storage.clips.path(digest).parent.stat().st_mode & 0o077 == 0
        for name in ("voicebot.db", "voicebot.db-wal"):
            assert (tmp_path / "data" / name).stat().st_mode & 0o077 == 0, name
    finally:
        await storage.close()
