"""The backend holds a request that bypasses the bots to the same intake: the engine's validation and the
batcher's up-front check refuse a bomb with `InvalidInput` (HTTP 422), and decode what the bots accept."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from backend.batcher import CloneBatcher
from backend.engine import Engine, EngineConfig
from backend.errors import InvalidInput
from backend.intake import AudioLimits
from backend.schema import CloneRequest
from tests.bombs import bombs
from tests.clips import ffmpeg_encode, sine_clip


@pytest.fixture(scope="module")
def engine() -> Engine:
    """Validation needs no model: an engine that is never loaded."""
    return Engine(EngineConfig(model="never-loaded", variant="test", audio_limits=AudioLimits(max_seconds=5.0)))


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backend-path")


@pytest.mark.parametrize("name", ["flac-says-hours-in-97-bytes", "flac-unknown-length", "opus-long", "webm-long"])
def test_engine_refuses_a_bomb(engine: Engine, made: Path, name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        engine.validate(CloneRequest(reference=bombs(120, made)[name](), text="Hello."))
    assert caught.value.code == "audio_too_long"


async def test_batcher_refuses_a_bomb_before_it_joins_a_batch(engine: Engine, made: Path) -> None:
    batches = []

    def clone_batch(requests, **_):
        batches.append(requests)
        raise AssertionError("a bomb reached the model")

    batcher = CloneBatcher(clone_batch, max_calls=4, validate=engine.validate)
    with pytest.raises(InvalidInput) as caught:
        await batcher.clone(CloneRequest(reference=bombs(120, made)["flac-unknown-length"](), text="Hello."))
    await asyncio.sleep(0)
    assert caught.value.code == "audio_too_long" and batches == []


@pytest.mark.parametrize("format", ["m4a", "webm", "mp3", "opus"])
def test_engine_accepts_what_phones_and_browsers_record(engine: Engine, made: Path, format: str) -> None:
    reference = ffmpeg_encode(sine_clip(3.0, 48_000), format, made / f"voice.{format}")
    engine.validate(CloneRequest(reference=reference, text="Hello."))
