"""Shared fixtures: the tiny random-weight checkpoint, one engine on it, and reference clips."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.clips import sine_clip  # noqa: E402

CACHE = Path(os.environ.get("VOICEBOT_TEST_CACHE", Path(__file__).resolve().parent.parent / ".pytest_cache" / "voicebot"))


@pytest.fixture(scope="session")
def tiny_checkpoint() -> Path:
    """Build the tiny checkpoint once per machine (about 7 s) through the project's own writer."""
    from backend.engine.checkpoint import build_random_checkpoint, is_checkpoint

    path = CACHE / "tiny"
    if not is_checkpoint(path):
        build_random_checkpoint("tiny", path)
    return path


@pytest.fixture(scope="session")
def engine(tiny_checkpoint):
    """One loaded engine for the whole session (the first voice prompt pays librosa's JIT warm-up once)."""
    from backend.engine import Engine, EngineConfig

    instance = Engine(EngineConfig(model=str(tiny_checkpoint), variant="test"))
    instance.load()
    return instance


@pytest.fixture
def clip() -> bytes:
    """A valid 3 s WAV reference clip at 16 kHz."""
    return sine_clip(seconds=3.0, sample_rate=16_000)
