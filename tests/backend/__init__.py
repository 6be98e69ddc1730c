"""Tests of the serving side of the backend: the web API, the Modal app and the clients."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import structlog

from backend import modal_app
from backend.schema import CloneRequest

REAL_ENGINE_CONFIG = modal_app.engine_config  # captured before any test patches it


def load_tiny_checkpoint(patch: pytest.MonkeyPatch, checkpoint: Path, *, on_cpu: bool = True) -> None:
    """Point the Modal classes' engine at the tiny checkpoint; `on_cpu` also swaps FA2/cuda:0 for SDPA/CPU."""
    overrides = {"model": str(checkpoint)} | ({"attention": "sdpa", "device": "cpu"} if on_cpu else {})
    patch.setattr(modal_app, "engine_config", lambda variant: REAL_ENGINE_CONFIG(variant).model_copy(update=overrides))


def record_batches(patch: pytest.MonkeyPatch) -> list[list[CloneRequest]]:
    """The requests of every `Engine.clone_batch` call from now on, in order; the real method still runs (a spy,
    not a fake). Batchers bind the method when they are built, so build them after this."""
    from backend.engine import Engine

    calls: list[list[CloneRequest]] = []
    original = Engine.clone_batch

    def recording(self, requests, **options):
        calls.append(list(requests))
        return original(self, requests, **options)

    patch.setattr(Engine, "clone_batch", recording)
    return calls


@contextmanager
def fresh_logging() -> Iterator[None]:
    """structlog's defaults (as in a new container) for the block, then the logging set up before it: what a
    test's `setup_logging` installs writes to that test's captured stderr, which is gone afterwards."""
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    structlog.reset_defaults()
    try:
        yield
    finally:
        root.handlers, root.level = handlers, level
        structlog.configure(**config)


def speech_like(seconds: float = 4.0, *, marked: bool) -> bytes:
    """The demo's speech-like clip as a 24 kHz WAV, with the watermark or without. The tiny checkpoint's output
    is noise with almost nothing between 500 Hz and 2 kHz, where PerthNet hides its mark, so it cannot carry
    one; tests of detection use this clip, tests of the engine check that every clip is marked."""
    import io

    import soundfile as sf

    from backend.audio import to_wav
    from backend.watermark import shared_watermarker
    from bot.demo import demo_reference

    samples, rate = sf.read(io.BytesIO(demo_reference(seconds)), dtype="float32")
    return to_wav(shared_watermarker("cpu").mark(samples, rate) if marked else samples, rate)
