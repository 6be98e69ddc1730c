"""The compile cache's key, its folders as torch's caches, and what a save keeps or replaces."""

from __future__ import annotations

import json
import os

import pytest

from backend.engine import compile_cache
from backend.engine.compile_cache import CompileCache

PARTS = {"torch": "2.11.0+cu130", "triton": "3.6.0", "cuda": "13.0", "gpu": "NVIDIA H200", "capability": "9.0",
         "engine": "abc", "talker": "def", "max_batch": 16}


@pytest.fixture(autouse=True)
def torch_cache_env(monkeypatch):
    """`load` sets these for the process; give them back after each test."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "unset")
    monkeypatch.setenv("TRITON_CACHE_DIR", "unset")


def test_the_key_names_every_part_and_only_them():
    key = CompileCache("/v", PARTS).key
    assert key == CompileCache("/v", dict(reversed(PARTS.items()))).key and key.startswith("torch2.11.0_cu130-")
    for name in PARTS:
        assert CompileCache("/v", PARTS | {name: "other"}).key != key, name


def test_the_engine_fingerprint_follows_the_fast_engine_sources(tmp_path, monkeypatch):
    (tmp_path / "decoder.py").write_text("x = 1\n")
    monkeypatch.setattr(compile_cache, "FAST_ENGINE_DIR", tmp_path)
    before = compile_cache.engine_fingerprint()
    (tmp_path / "decoder.py").write_text("x = 2\n")
    assert compile_cache.engine_fingerprint() != before


def test_a_first_process_compiles_into_the_keys_folders_and_marks_them_complete(tmp_path):
    first = CompileCache(tmp_path, PARTS)
    assert first.load() is False
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / first.key / "inductor")
    assert os.environ["TRITON_CACHE_DIR"] == str(tmp_path / first.key / "triton")
    assert first.save(complete=False)  # start-up shapes only
    partial = CompileCache(tmp_path, PARTS)
    assert partial.load() is True and partial.loaded_complete is False
    assert partial.save(complete=True)
    later = CompileCache(tmp_path, PARTS)
    assert later.load() is True and later.loaded_complete is True
    assert later.save(complete=True) is False  # nothing to add


def test_other_versions_compile_afresh_and_replace_the_stale_entry_once_complete(tmp_path):
    old = CompileCache(tmp_path, PARTS | {"torch": "2.10.0"})
    old.load()
    (old.entry / "inductor" / "kernel.py").write_text("compiled for 2.10")
    old.save(complete=True)

    new = CompileCache(tmp_path, PARTS)
    assert new.load() is False and not any((new.entry / "inductor").iterdir())  # nothing of 2.10 is used
    new.save(complete=False)
    assert old.entry.exists()  # a container still on 2.10 may be compiling into it
    new.save(complete=True)
    assert not old.entry.exists() and sorted(p.name for p in tmp_path.iterdir()) == [new.key]


def test_a_damaged_entry_is_removed_and_recompiled(tmp_path):
    cache = CompileCache(tmp_path, PARTS)
    (cache.entry / "inductor").mkdir(parents=True)
    (cache.entry / "inductor" / "half-written.py").write_text("def")
    (cache.entry / "meta.json").write_text("{not json")
    assert cache.load() is False
    assert not (cache.entry / "inductor" / "half-written.py").exists() and (cache.entry / "inductor").is_dir()
    assert cache.save(complete=True)
    assert json.loads((cache.entry / "meta.json").read_text())["complete"] is True
