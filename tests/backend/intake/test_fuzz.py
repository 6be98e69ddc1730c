"""Fuzzing `read_reference`: whatever bytes arrive, the result is a valid clip or `InvalidInput`, never a crash,
and whatever a header claims, decoding allocates no more than a valid clip's cap.

Uploads are hostile input fed to libsndfile and ffmpeg; a stray `MemoryError`, `ZeroDivisionError` or a
numpy error would reach the bots (or the web API, as HTTP 500) as an unexplained failure instead of a
message the user can act on. Time is bounded by ffmpeg's deadline, so examples run without one.
"""

from __future__ import annotations

import io
import tracemalloc

import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.errors import InvalidInput
from backend.intake import AudioLimits, read_reference
from tests.bombs import flac_declaring, mp3_declaring, wav_at_rate, wav_declaring, webm_declaring
from tests.clips import ffmpeg_encode, sine_clip

LIMITS = AudioLimits()
CODES = {
    "empty_audio", "audio_too_large", "not_audio", "corrupt_audio", "audio_too_short",
    "audio_too_long", "silent_audio", "bad_sample_rate",
}
# The first bytes of every container `read_reference` decodes, so random tails reach each decoder.
MAGIC = [
    b"RIFF\xff\xff\x00\x00WAVEfmt ", b"fLaC", b"ID3\x04\x00\x00\x00\x00\x00\x00", b"\xff\xfb\x90\x64",
    b"OggS\x00\x02", b"\x00\x00\x00\x1cftypM4A ", b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\xf2\x81\x04webm",
    b"\xff\xf1\x50\x80", b"#!AMR\n", b"FORM\x00\x00\x10\x00AIFF",
]
# A valid clip's cap (30 s of float32 mono at the highest accepted rate) plus its checks and the WAV made of it.
MEMORY_BOUND = 2 * (LIMITS.max_frames(LIMITS.max_sample_rate) + 1) * 4 + 8 * 1024 * 1024
FUZZ = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="session")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Valid 1.2 s clips (short, so each example decodes fast) in the formats whose headers get mutated."""
    directory = tmp_path_factory.mktemp("fuzz-seeds")
    wav = sine_clip(1.2, 16_000)
    formats = ("flac", "mp3", "ogg", "m4a", "webm")
    return {"wav": wav} | {name: ffmpeg_encode(wav, name, directory / name) for name in formats}


def assert_clip_or_invalid_input(data: bytes) -> None:
    """The property under test; any other exception fails the example with its traceback."""
    try:
        clip = read_reference(data, LIMITS, filename="fuzz.bin")
    except InvalidInput as error:
        assert error.code in CODES, error.code
        return
    assert LIMITS.min_seconds <= clip.seconds <= LIMITS.max_seconds
    assert sf.info(io.BytesIO(clip.wav)).frames == clip.samples.size


@st.composite
def mutated(draw: st.DrawFn, seeds: dict[str, bytes]) -> bytes:
    """A valid clip with bits flipped (mostly in the header, where parsers trust lengths) and maybe cut short."""
    data = bytearray(draw(st.sampled_from(sorted(seeds.values()))))
    header = min(len(data), 512)
    for _ in range(draw(st.integers(0, 8))):
        position = draw(st.one_of(st.integers(0, header - 1), st.integers(0, len(data) - 1)))
        data[position] ^= 1 << draw(st.integers(0, 7))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data))):]
    return bytes(data)


@FUZZ
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes(data: bytes) -> None:
    assert_clip_or_invalid_input(data)


@FUZZ
@given(data=st.builds(bytes.__add__, st.sampled_from(MAGIC), st.binary(max_size=4096)))
def test_audio_magic_followed_by_garbage(data: bytes) -> None:
    assert_clip_or_invalid_input(data)


@FUZZ
@given(data=st.data())
def test_mutated_valid_clips(seeds: list[bytes], data: st.DataObject) -> None:
    assert_clip_or_invalid_input(data.draw(mutated(seeds)))


@st.composite
def lying_header(draw: st.DrawFn, seeds: dict[str, bytes]) -> bytes:
    """A valid clip whose length or rate field claims any value at all."""
    lie = draw(st.sampled_from(["flac", "wav-size", "wav-rate", "mp3", "webm"]))
    if lie == "flac":
        return flac_declaring(seeds["flac"], draw(st.integers(0, 2**36 - 1)))
    if lie == "wav-size":
        return wav_declaring(seeds["wav"], draw(st.integers(0, 2**32 - 1)))
    if lie == "wav-rate":
        return wav_at_rate(seeds["wav"], draw(st.integers(0, 2**32 - 1)))
    if lie == "mp3":
        return mp3_declaring(seeds["mp3"], draw(st.integers(0, 2**32 - 1)))
    return webm_declaring(seeds["webm"], draw(st.floats(allow_nan=True, allow_infinity=True)))


@FUZZ
@given(data=st.data())
def test_lying_headers_cost_no_more_than_a_valid_clip(seeds: dict[str, bytes], data: st.DataObject) -> None:
    clip = data.draw(lying_header(seeds))
    tracemalloc.start()
    try:
        assert_clip_or_invalid_input(clip)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND
