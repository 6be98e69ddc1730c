"""Reference-clip intake: every format users upload decodes to the right length, every bad upload gets its own code."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
import soundfile as sf

from backend.errors import InvalidInput
from backend.intake import MIB, SUPPORTED, ReferenceClip, read_reference
from backend.intake import ffmpeg as intake_ffmpeg
from tests.clips import encode, ffmpeg, ffmpeg_encode, sine_clip, sine_samples

Encoder = Callable[..., bytes]
TOLERANCE_S = 0.05


@pytest.fixture(scope="session")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> Encoder:
    """ffmpeg encodings of the test tone, `encoded(format, seconds=3.0, amplitude=0.3)`, each made once."""
    directory = tmp_path_factory.mktemp("encoded")

    @cache
    def make(format: str, seconds: float = 3.0, amplitude: float = 0.3) -> bytes:
        wav = sine_clip(seconds, 48_000, amplitude)
        return ffmpeg_encode(wav, format, directory / f"{format}-{seconds:g}s-{amplitude:g}")

    return make


@pytest.fixture(scope="session")
def silent_video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A WebM with a VP9 picture and no sound: a screen recording sent by mistake."""
    path = tmp_path_factory.mktemp("video") / "silent.webm"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=16x16:d=1", "-c:v", "libvpx-vp9", "-f", "webm", str(path))
    return path.read_bytes()


def rejection(data: bytes, **kwargs) -> InvalidInput:
    """The `InvalidInput` that `read_reference` raises for `data`."""
    with pytest.raises(InvalidInput) as caught:
        read_reference(data, **kwargs)
    return caught.value


def assert_about(clip: ReferenceClip, seconds: float, format: str) -> None:
    assert clip.format == format
    assert clip.seconds == pytest.approx(seconds, abs=TOLERANCE_S)
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1


# --- good clips -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample_rate", "subtype", "channels"),
    [(16_000, "PCM_16", 1), (16_000, "FLOAT", 1), (8_000, "PCM_16", 1), (48_000, "PCM_16", 1),
     (44_100, "PCM_16", 2), (24_000, "PCM_24", 1)],
)
def test_wav_variants_decode(sample_rate: int, subtype: str, channels: int) -> None:
    mono = sine_samples(3.0, sample_rate)
    samples = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    clip = read_reference(encode(samples, sample_rate, subtype=subtype))
    assert_about(clip, 3.0, "wav")
    assert clip.sample_rate == sample_rate


@pytest.mark.parametrize(
    ("format", "detected"),
    [("flac", "flac"), ("ogg", "ogg"), ("opus", "ogg"), ("mp3", "mp3"), ("mp3_bare", "mp3"),
     ("m4a", "m4a"), ("webm", "webm")],
)
def test_compressed_formats_decode_to_the_right_length(encoded: Encoder, format: str, detected: str) -> None:
    assert_about(read_reference(encoded(format)), 3.0, detected)


@pytest.mark.parametrize("format", ["mp3", "opus"])
def test_wav_for_the_backend_is_16_bit_mono_of_the_same_samples(encoded: Encoder, format: str) -> None:
    clip = read_reference(encoded(format))
    info = sf.info(io.BytesIO(clip.wav))
    assert (info.format, info.subtype, info.channels) == ("WAV", "PCM_16", 1)
    assert (info.samplerate, info.frames) == (clip.sample_rate, clip.samples.size)
    decoded, _ = sf.read(io.BytesIO(clip.wav), dtype="float32")
    assert np.abs(decoded - clip.samples).max() < 1e-4


def test_type_comes_from_content_not_the_file_name(encoded: Encoder) -> None:
    assert read_reference(sine_clip(), filename="voice.mp3").format == "wav"
    assert read_reference(encoded("mp3"), filename="clip.wav").format == "mp3"


def test_flac_of_unknown_length_decodes(encoded: Encoder) -> None:
    """A FLAC written to a pipe leaves STREAMINFO's total sample count at 0; ffmpeg reads it to the end."""
    flac = bytearray(encoded("flac"))
    flac[21] &= 0xF0  # total samples: the low 4 bits of byte 21 and bytes 22-25
    flac[22:26] = bytes(4)
    assert_about(read_reference(bytes(flac)), 3.0, "flac")


# --- bad clips: each its own code and a message that says what to do --------------------------------------------


def test_empty() -> None:
    error = rejection(b"")
    assert error.code == "empty_audio" and "empty" in error.message


def test_too_large_is_refused_before_decoding() -> None:
    error = rejection(b"RIFF" + bytes(10 * MIB))
    assert error.code == "audio_too_large" and "10 MiB" in error.message


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17)


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (PNG, "looks like a PNG image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "looks like a PDF file"),
        (b"PK\x03\x04" + bytes(26), "looks like a ZIP file"),
        (b"MThd\x00\x00\x00\x06\x00\x01", "looks like a MIDI file"),
        ("Hello, here is my voice sample 🎙\n".encode(), "looks like text"),
        (b"\n  <!DOCTYPE html><html><body>Access denied</body></html>", "looks like a web page"),
        (bytes(range(256)) * 8, "not in a recognised audio format"),
    ],
)
def test_not_audio_says_what_it_looks_like(data: bytes, looks_like: str) -> None:
    error = rejection(data)
    assert error.code == "not_audio"
    assert looks_like in error.message and SUPPORTED in error.message


def test_video_without_sound(silent_video: bytes) -> None:
    error = rejection(silent_video)
    assert error.code == "not_audio" and "no audio track" in error.message


@pytest.mark.parametrize(
    "data",
    [
        b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\xff" * 16 + b"data" + bytes(4),
        b"fLaC" + bytes(range(200)),
        b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00\x17" * 500,
        b"OggS\x00\x02" + bytes(500),
        b"\x00\x00\x00\x1cftypM4A \x00\x00\x02\x00M4A isom" + bytes(500),
        b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\xf2\x81\x04B\xf3\x81\x08B\x82\x84webm" + bytes(500),
    ],
    ids=["wav", "flac", "mp3", "ogg", "m4a", "webm"],
)
def test_corrupt_audio(data: bytes) -> None:
    error = rejection(data)
    assert error.code == "corrupt_audio" and "could not be decoded" in error.message


@pytest.mark.parametrize("format", ["wav", "flac", "ogg", "opus", "mp3", "m4a", "webm"])
def test_cut_in_half_is_corrupt_or_too_short(encoded: Encoder, format: str) -> None:
    whole = sine_clip(1.5, 48_000) if format == "wav" else encoded(format, 1.5)
    assert rejection(whole[: len(whole) // 2]).code in {"corrupt_audio", "audio_too_short"}


@pytest.mark.parametrize("format", ["wav", "mp3"])
def test_too_short(encoded: Encoder, format: str) -> None:
    error = rejection(sine_clip(0.5) if format == "wav" else encoded(format, 0.5))
    assert error.code == "audio_too_short" and "at least 1 s" in error.message


def test_too_long_wav() -> None:
    error = rejection(sine_clip(31.0))
    assert error.code == "audio_too_long" and "31.0 s" in error.message and "Trim" in error.message


def test_too_long_compressed_stops_decoding_at_the_limit(encoded: Encoder) -> None:
    error = rejection(encoded("mp3", 45.0))
    assert error.code == "audio_too_long" and "longer than the 30 s limit" in error.message


def test_header_declaring_hours_is_refused_without_decoding(encoded: Encoder) -> None:
    """Digital silence compresses so well that 10 MiB of FLAC can declare 100+ hours (14 GB decoded)."""
    flac = bytearray(encoded("flac"))
    flac[21] |= 0x0F  # total samples: 2**36 - 1
    flac[22:26] = b"\xff" * 4
    error = rejection(bytes(flac))
    assert error.code == "audio_too_long" and "declares" in error.message


@pytest.mark.parametrize("format", ["wav", "mp3"])
def test_silent(encoded: Encoder, format: str) -> None:
    error = rejection(sine_clip(amplitude=0.0) if format == "wav" else encoded(format, amplitude=0.0))
    assert error.code == "silent_audio" and "silent" in error.message


def test_bad_sample_rate() -> None:
    error = rejection(sine_clip(3.0, sample_rate=4_000))
    assert error.code == "bad_sample_rate" and "4000 Hz" in error.message


def test_nan_samples_are_corrupt() -> None:
    samples = sine_samples()
    samples[100] = np.nan
    assert rejection(encode(samples, 16_000, subtype="FLOAT")).code == "corrupt_audio"


def test_ffmpeg_that_overruns_its_deadline_is_stopped(encoded: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake_ffmpeg, "FFMPEG_TIMEOUT_S", 0.001)
    error = rejection(encoded("mp3"))
    assert error.code == "corrupt_audio" and "took longer" in error.message


# --- file names in messages ----------------------------------------------------------------------------------------


def test_message_names_the_file() -> None:
    error = rejection(b"", filename="uploads/voice memo.m4a")
    assert error.message.startswith("The reference clip “voice memo.m4a” is empty")
    assert error.code == "empty_audio"


@pytest.mark.parametrize("filename", [None, "", "\x07\n"])
def test_message_without_a_usable_name_is_unchanged(filename: str | None) -> None:
    assert rejection(b"", filename=filename).message == "The reference clip is empty (0 bytes)."


def test_file_name_is_cleaned_for_chat() -> None:
    error = rejection(PNG, filename="C:\\Users\\me\\bad\nname\x07" + "x" * 100 + ".png")
    shown = error.message.split("“")[1].split("”")[0]
    assert shown.startswith("badname") and len(shown) == 60 and shown.endswith("…")
