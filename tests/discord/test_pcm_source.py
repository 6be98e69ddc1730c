"""`StreamedPcm`: exact 20 ms frames of 48 kHz stereo s16 from 24 kHz mono chunks of any size, checked on samples."""

from __future__ import annotations

import discord
import numpy as np
import pytest
import soxr
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.discord.playback.pcm_source import FRAME_BYTES, FRAME_SAMPLES, SILENCE, StreamedPcm

RATE = 24_000


def tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def play(source: StreamedPcm, limit: int = 100_000) -> list[bytes]:
    frames = []
    while (frame := source.read()) and len(frames) < limit:
        frames.append(frame)
    return frames


def channels(frames: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    pcm = np.frombuffer(b"".join(frames), dtype="<i2").reshape(-1, 2).astype(np.float32) / 32767.0
    return pcm[:, 0], pcm[:, 1]


def cut_into(signal: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    chunks, start = [], 0
    for size in sizes:
        chunks.append(signal[start:start + size])
        start += size
    chunks.append(signal[start:])
    return chunks


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5000), max_size=30))
def test_any_chunking_gives_the_same_samples_as_resampling_the_whole(sizes: list[int]) -> None:
    signal = tone(1.0)
    source = StreamedPcm(wait_s=0)
    for chunk in cut_into(signal, sizes):
        source.feed(chunk)
    source.end()
    frames = play(source)

    assert all(len(frame) == FRAME_BYTES for frame in frames)
    left, right = channels(frames)
    assert np.array_equal(left, right)
    reference = soxr.resample(signal, RATE, 48_000)
    assert len(left) == -(-len(reference) // FRAME_SAMPLES) * FRAME_SAMPLES  # the last frame padded, nothing lost
    assert np.max(np.abs(left[:len(reference)] - reference)) < 2e-3  # no gap, repeat or click at chunk edges
    assert not left[len(reference):].any()


def test_a_chunk_edge_leaves_no_step_in_the_waveform() -> None:
    signal = tone(0.5, freq=220.0)
    source = StreamedPcm(wait_s=0)
    for chunk in np.array_split(signal, 37):
        source.feed(chunk)
    source.end()
    left, _ = channels(play(source))
    steps = np.abs(np.diff(left[100: len(signal) * 2 - 200]))  # past the filter's onset and before its tail
    # a 220 Hz tone at 0.5 moves at most 2*pi*220*0.5/48000 = 0.0144 per sample
    assert steps.max() < 0.016


def test_late_chunks_are_bridged_with_silence_and_counted_then_the_speech_resumes() -> None:
    source = StreamedPcm(wait_s=0)
    assert source.read() == SILENCE  # nothing generated yet: the player keeps its timing
    assert source.underruns == 0 and source.first_audio_at is None  # waiting for the start is not an underrun
    source.feed(tone(0.1))
    speech = []
    while (frame := source.read()) != SILENCE:
        speech.append(frame)
    assert len(speech) >= 3 and source.first_audio_at is not None
    assert source.underruns == 1  # the generation fell behind
    source.feed(tone(0.1))
    source.end()
    rest = play(source)
    assert rest and all(len(frame) == FRAME_BYTES for frame in rest)
    assert source.read() == b""


def test_loud_samples_are_clipped_not_wrapped() -> None:
    source = StreamedPcm(wait_s=0)
    source.feed(np.full(2400, 3.0, dtype=np.float32))
    source.end()
    left, _ = channels(play(source))
    assert left.min() >= 0.0 and np.isclose(left[200:4000], 1.0, atol=1e-3).all()


def test_max_seconds_ends_the_playback_and_says_so() -> None:
    source = StreamedPcm(wait_s=0, max_seconds=0.1)
    source.feed(tone(2.0))
    frames = play(source)
    assert len(frames) == 5 and source.cut
    source.feed(tone(0.1))  # a producer still running is ignored
    assert source.read() == b""


def test_an_empty_stream_ends_at_once() -> None:
    source = StreamedPcm(wait_s=0)
    source.end()
    assert source.read() == b"" and source.finished


def test_stopping_drops_what_is_queued() -> None:
    source = StreamedPcm(wait_s=0)
    source.feed(tone(1.0))
    source.cleanup()
    assert source.read() == b""


def test_the_real_opus_encoder_takes_every_frame() -> None:
    try:
        discord.opus._load_default()
    except OSError:
        pass
    if not discord.opus.is_loaded():
        pytest.skip("libopus is not installed (Debian: libopus0)")
    source = StreamedPcm(wait_s=0)
    source.feed(tone(0.3))
    source.end()
    encoder = discord.opus.Encoder()
    packets = [encoder.encode(frame, FRAME_SAMPLES) for frame in play(source)]
    assert len(packets) == 15 and all(packets)
