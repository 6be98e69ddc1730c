"""Fuzzing `read_reference`: whatever bytes arrive, the result is a valid clip or `InvalidInput`, never a crash.

Uploads are hostile input fed to libsndfile and ffmpeg; a stray `MemoryError`, `ZeroDivisionError` or a
numpy error would reach the bots as an unexplained failure instead of a message the user can act on.
"""

from __future__ import annotations

import io

import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.errors import InvalidInput
from backend.intake import AudioLimits, read_reference
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
FUZZ = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="session")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Valid 1.2 s clips (short, so each example decodes fast) in the formats whose headers get mutated."""
    directory = tmp_path_factory.mktemp("fuzz-seeds")
    wav = sine_clip(1.2, 16_000)
    return [wav] + [ffmpeg_encode(wav, name, directory / name) for name in ("flac", "mp3", "ogg", "m4a", "webm")]


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
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A valid clip with bits flipped (mostly in the header, where parsers trust lengths) and maybe cut short."""
    data = bytearray(draw(st.sampled_from(seeds)))
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
