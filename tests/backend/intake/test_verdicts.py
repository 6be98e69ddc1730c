"""What the intake calls a voice: speech by voice activity (not peak level), real samples (finite, within
full scale), and MP3 found by its frames wherever they start."""

from __future__ import annotations

import numpy as np
import pytest

from backend.errors import InvalidInput
from backend.intake import read_reference
from tests.clips import encode, ffmpeg_encode, sine_clip, sine_samples

RATE = 16_000


def code_for(data: bytes) -> str:
    with pytest.raises(InvalidInput) as caught:
        read_reference(data)
    return caught.value.code


def steady(kind: str, rms_dbfs: float, seconds: float = 3.0) -> np.ndarray:
    """Steady noise or hum at a given RMS level: a room with nobody speaking."""
    rng = np.random.default_rng(7)
    n = int(seconds * RATE)
    if kind == "white":
        signal = rng.standard_normal(n)
    elif kind == "pink":
        spectrum = np.fft.rfft(rng.standard_normal(n)) / np.sqrt(np.maximum(np.arange(n // 2 + 1), 1))
        signal = np.fft.irfft(spectrum, n)
    else:  # mains hum with its third harmonic
        t = np.arange(n) / RATE
        signal = np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 150 * t)
    return (signal / signal.std() * 10 ** (rms_dbfs / 20)).astype(np.float32)


@pytest.mark.parametrize(("kind", "rms_dbfs"), [("white", -70), ("white", -40), ("pink", -50), ("hum", -40)])
def test_steady_noise_is_silent(kind: str, rms_dbfs: float) -> None:
    """White noise at -70 dBFS peaks near -57 dBFS: a peak rule took it for a voice."""
    assert code_for(encode(steady(kind, rms_dbfs), RATE, subtype="FLOAT")) == "silent_audio"


@pytest.mark.parametrize(("sample_rate", "peak"), [(8_000, 0.3), (16_000, 0.03), (44_100, 0.9), (48_000, 0.3)])
def test_a_voice_is_heard_at_any_accepted_rate_and_a_quiet_level(sample_rate: int, peak: float) -> None:
    assert read_reference(sine_clip(3.0, sample_rate, peak)).seconds == pytest.approx(3.0)


def test_amr_header_on_random_bytes_is_not_a_clip() -> None:
    """ "#!AMR" + random bytes decoded to a 14.7 s 'clip' peaking at 3.6 x full scale: half its frames fail."""
    for seed in range(3):
        garbage = b"#!AMR\n" + np.random.default_rng(seed).bytes(10 * 1024 * 1024 - 100)
        assert code_for(garbage) in {"corrupt_audio", "not_audio"}


@pytest.mark.parametrize("gain", [2.5, 100.0])
def test_samples_far_beyond_full_scale_are_corrupt(gain: float) -> None:
    assert code_for(encode(gain * sine_samples(amplitude=0.9), RATE, subtype="FLOAT")) == "corrupt_audio"


def test_lossy_overshoot_just_past_full_scale_is_accepted() -> None:
    """Decoded MP3s of loud recordings peak a little over 1.0; that is still a recording."""
    assert read_reference(encode(1.3 * sine_samples(amplitude=0.9), RATE, subtype="FLOAT")).format == "wav"


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_non_finite_samples_are_corrupt(value: float) -> None:
    samples = sine_samples()
    samples[1000] = value
    assert code_for(encode(samples, RATE, subtype="FLOAT")) == "corrupt_audio"


def test_mp3_missing_its_first_2_kib_is_still_an_mp3(tmp_path) -> None:
    """A cut download: no ID3 tag and no frame header at byte 0, but ffmpeg finds the frames after it."""
    mp3 = ffmpeg_encode(sine_clip(4.0, 44_100), "mp3", tmp_path / "voice.mp3")
    clip = read_reference(mp3[2048:])
    assert clip.format == "mp3" and clip.seconds == pytest.approx(4.0 - 2048 * 8 / 128_000, abs=0.1)
