"""Decompression bombs and lying headers: each is refused with a code, within the memory a valid clip takes.

Memory is measured with tracemalloc (numpy reports its buffers to it), so the assertion is on what the
intake allocates, not on timing: a decoder sized from the header or from the content (2 minutes where the
limit is 5 s) would allocate 10-100 000 times the cap.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from backend.errors import InvalidInput
from backend.intake import AudioLimits, load_reference
from backend.intake.soundfile_reader import read_bounded
from tests.bombs import BOMB_RATE, bombs
from tests.clips import sine_clip

LIMITS = AudioLimits(max_seconds=5.0)
BOMB_SECONDS = 120.0
# The cap (float32 mono at the bombs' rate, one frame past the limit) plus one read block and change.
MEMORY_BOUND = (LIMITS.max_frames(BOMB_RATE) + 1) * 4 + 1024 * 1024
EXPECTED = {
    "flac-long": "audio_too_long", "flac-unknown-length": "audio_too_long",
    "flac-says-3s": "silent_audio",  # libsndfile stops where the header says: 3 s of silence
    "flac-says-hours-in-97-bytes": "audio_too_long",
    "opus-long": "audio_too_long", "vorbis-long": "audio_too_long",
    "mp3-long": "audio_too_long", "mp3-says-3s": "audio_too_long",
    "webm-long": "audio_too_long", "webm-says-3s": "audio_too_long", "webm-says-30-years": "audio_too_long",
    "m4a-long": "audio_too_long",
    "wav-long": "audio_too_long", "wav-streamed": "audio_too_long",
    "wav-says-4gb-in-1kb": "audio_too_short", "wav-at-1ghz": "bad_sample_rate",
}


@pytest.fixture(scope="session")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], bytes]:
    made = bombs(BOMB_SECONDS, tmp_path_factory.mktemp("bombs"))
    return lambda name: made[name]()


@dataclass
class Allocations:
    peak: int = 0  # bytes


@contextmanager
def allocations() -> Iterator[Allocations]:
    """The peak of what was allocated inside the block (set when it ends, even by an exception)."""
    measured = Allocations()
    tracemalloc.start()
    try:
        yield measured
    finally:
        measured.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def test_every_bomb_has_an_expectation(tmp_path: Path) -> None:
    assert set(bombs(BOMB_SECONDS, tmp_path)) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bomb_is_refused_within_the_cap(bomb: Callable[[str], bytes], name: str) -> None:
    data = bomb(name)
    with allocations() as measured, pytest.raises(InvalidInput) as caught:
        load_reference(data, LIMITS)
    assert caught.value.code == EXPECTED[name]
    assert 0 < measured.peak < MEMORY_BOUND


@pytest.mark.parametrize("name", ["flac-long", "opus-long", "vorbis-long", "wav-long"])
def test_decoding_stops_at_the_cap_even_past_a_header_check(bomb: Callable[[str], bytes], name: str) -> None:
    """The header check is a shortcut, not the protection: the reader itself never holds more than the cap."""
    data = io.BytesIO(bomb(name))
    with allocations() as measured, pytest.raises(InvalidInput) as caught:
        read_bounded(data, LIMITS, check_header=False)
    assert caught.value.code == "audio_too_long" and "longer than the 5 s limit" in caught.value.message
    assert 0 < measured.peak < MEMORY_BOUND


def test_memory_error_while_decoding_is_invalid_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a decoder runs out of, the caller gets a code, not an unhandled exception (HTTP 500)."""
    def exhausted(*args, **kwargs):
        raise MemoryError

    clip = sine_clip()
    monkeypatch.setattr(np, "empty", exhausted)
    with pytest.raises(InvalidInput) as caught:
        load_reference(clip)
    assert caught.value.code == "corrupt_audio" and "memory" in caught.value.message
