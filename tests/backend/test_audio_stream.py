"""Speech chunks off the engine's thread (`chunks_in_thread`), one deadline over a stream, and the audio stream's
wire events, fuzzed: whatever a server sends, a reader raises `ValueError` or a `VoicebotError`, nothing else."""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.audio_stream import chunks_in_thread, items_until
from backend.errors import BackendTimeout, InvalidInput, VoicebotError
from backend.wire import (
    AUDIO_PIECE_SAMPLES,
    END_EVENT,
    AudioStreamReader,
    audio_event,
    error_event,
    pcm16_pieces,
)


class Engine:
    """A blocking stream of `count` chunks; records how it ended."""

    def __init__(self, count: int, fail_after: int | None = None, hang: threading.Event | None = None) -> None:
        self.count, self.fail_after, self.hang = count, fail_after, hang
        self.closed = threading.Event()
        self.produced = 0

    def stream(self) -> Iterator[np.ndarray]:
        try:
            for index in range(self.count):
                if self.hang is not None:
                    self.hang.wait(5)
                if index == self.fail_after:
                    raise InvalidInput("bad text", code="bad_text")
                self.produced += 1
                yield np.full(10, index, dtype=np.float32)
        finally:
            self.closed.set()


async def test_chunks_arrive_in_order_then_the_stream_ends() -> None:
    engine = Engine(5)
    chunks = [chunk async for chunk in chunks_in_thread(engine.stream, timeout_s=10)]
    assert [int(chunk[0]) for chunk in chunks] == [0, 1, 2, 3, 4] and engine.closed.wait(1)


async def test_a_failure_comes_after_the_chunks_before_it() -> None:
    seen = []
    with pytest.raises(InvalidInput):
        async for chunk in chunks_in_thread(Engine(5, fail_after=2).stream, timeout_s=10):
            seen.append(int(chunk[0]))
    assert seen == [0, 1]


async def test_a_consumer_that_stops_early_stops_the_generation() -> None:
    engine = Engine(1000, hang=threading.Event())
    engine.hang.set()
    stream = chunks_in_thread(engine.stream, timeout_s=10)
    assert int((await anext(stream))[0]) == 0
    await stream.aclose()
    assert engine.closed.wait(2) and engine.produced < 1000


async def test_a_stalled_engine_is_given_up_at_the_deadline() -> None:
    engine = Engine(3, hang=threading.Event())  # never set: the engine hangs before its first chunk
    with pytest.raises(BackendTimeout):
        async for _ in chunks_in_thread(engine.stream, timeout_s=0.05):
            pass
    engine.hang.set()  # the thread finishes on its own; nobody waited for it
    assert engine.closed.wait(2)


async def test_one_deadline_over_a_remote_stream() -> None:
    async def slow():
        yield 1
        await asyncio.sleep(10)
        yield 2

    loop = asyncio.get_running_loop()
    seen = []
    with pytest.raises(TimeoutError):
        async for item in items_until(slow(), loop.time() + 0.05):
            seen.append(item)
    assert seen == [1]


def test_pcm_pieces_are_half_a_second_at_most_and_clipped() -> None:
    pieces = list(pcm16_pieces(np.full(AUDIO_PIECE_SAMPLES * 2 + 7, 2.0, dtype=np.float32)))
    assert [len(piece) for piece in pieces] == [2 * AUDIO_PIECE_SAMPLES, 2 * AUDIO_PIECE_SAMPLES, 14]
    reader = AudioStreamReader(as_text=False)
    # full scale: 32767, which reads back as 32767/32768, as from a WAV
    assert np.allclose(reader.read(audio_event(pieces[0], as_text=False)), 1.0, atol=1 / 32768)


@pytest.mark.parametrize("as_text", [True, False])
def test_a_reader_takes_pieces_until_the_end_then_nothing(as_text: bool) -> None:
    reader = AudioStreamReader(as_text=as_text)
    samples = np.linspace(-1, 1, 1000, dtype=np.float32)
    [piece] = pcm16_pieces(samples)
    assert np.abs(reader.read(audio_event(piece, as_text=as_text)) - samples).max() < 1e-4
    assert reader.read(END_EVENT) is None and reader.ended
    with pytest.raises(ValueError):
        reader.read(audio_event(piece, as_text=as_text))  # nothing after the end
    with pytest.raises(ValueError):
        reader.read(END_EVENT)


def test_an_error_event_is_raised_as_its_error() -> None:
    with pytest.raises(InvalidInput, match="too short") as raised:
        AudioStreamReader(as_text=True).read(error_event(InvalidInput("The clip is too short.", code="short")))
    assert raised.value.code == "short"


@pytest.mark.parametrize("event", [
    {"audio": "AAA"},  # not base64 of whole samples
    {"audio": base64.b64encode(b"\x00" * 3).decode()},  # an odd byte count
    {"audio": base64.b64encode(b"\x00" * (2 * AUDIO_PIECE_SAMPLES + 2)).decode()},  # over half a second
    {"audio": 12}, {"audio": None}, {"audio": "x", "end": {}}, {"progress": {}}, [], "audio", None,
])
def test_anything_else_is_refused(event: object) -> None:
    with pytest.raises(ValueError):
        AudioStreamReader(as_text=True).read(event)


def test_no_more_audio_than_any_generation_makes() -> None:
    reader = AudioStreamReader(as_text=False, max_samples=AUDIO_PIECE_SAMPLES)
    piece = bytes(2 * AUDIO_PIECE_SAMPLES)
    reader.read({"audio": piece})
    with pytest.raises(ValueError):
        reader.read({"audio": b"\x00\x00"})


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=50) | st.binary(max_size=64),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3), max_leaves=8)


@settings(deadline=None)  # the suite runs on shared cores: no per-example time limit
@given(st.one_of(json_values, st.dictionaries(st.sampled_from(["audio", "end", "error"]), json_values,
                                              min_size=1, max_size=1)))
def test_a_reader_fails_only_as_documented(event: object) -> None:
    for as_text in (True, False):
        try:
            AudioStreamReader(as_text=as_text).read(event)
        except (ValueError, VoicebotError):
            pass
