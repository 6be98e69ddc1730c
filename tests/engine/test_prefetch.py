"""The checkpoint prefetch: every file read once per process, on a thread, and nothing for a missing folder."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from backend.engine import prefetch


def test_reads_every_file_once_per_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "speech_tokenizer").mkdir()
    files = {tmp_path / "model.safetensors": 3 * prefetch.CHUNK_BYTES // 2, tmp_path / "config.json": 10,
             tmp_path / "speech_tokenizer" / "model.safetensors": 100}
    for path, size in files.items():
        path.write_bytes(b"x" * size)
    opened: list[Path] = []
    real_open = builtins.open

    def recording_open(file, *args, **kwargs):
        opened.append(Path(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    monkeypatch.setattr(prefetch, "_started", {})
    thread = prefetch.prefetch_checkpoint(tmp_path)
    assert thread is not None
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert sorted(opened) == sorted(path.resolve() for path in files)
    assert opened[0].name == "model.safetensors" and opened[0].parent == tmp_path.resolve()  # largest first
    assert prefetch.prefetch_checkpoint(str(tmp_path)) is thread  # the same folder is not read twice


def test_missing_directory_starts_nothing(tmp_path: Path) -> None:
    assert prefetch.prefetch_checkpoint(tmp_path / "absent") is None
    assert prefetch.prefetch_checkpoint("Qwen/Qwen3-TTS-12Hz-1.7B-Base") is None  # a hub id: nothing local
