"""Reference clips made in code, so tests carry no audio files."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
from imageio_ffmpeg import get_ffmpeg_exe

from backend.audio import to_wav

# A vowel: (centre Hz, bandwidth Hz) of the first three formants of an /a/.
FORMANTS = ((700, 130), (1220, 70), (2600, 160))


def sine_samples(seconds: float = 3.0, sample_rate: int = 16_000, amplitude: float = 0.3) -> np.ndarray:
    """A sung vowel, made of sines: harmonics of a 120-160 Hz pitch shaped by /a/ formants, in ~4 syllables
    per second, plus a little noise; `amplitude` is its peak.

    The intake's voice-activity detector calls all of it speech (a bare 220 Hz sine is 3 % voiced, so it
    would be "silent"); even at a 0.03 peak (-30 dBFS) 0.4-0.7 s of a 3 s clip count as speech.
    """
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voice = np.zeros_like(t)
    for harmonic in range(1, int(min(4_000, sample_rate / 2) // 160)):
        frequency = 140 * harmonic
        gain = sum(1 / (1 + ((frequency - centre) / width) ** 2) for centre, width in FORMANTS) / harmonic**0.5
        voice += gain * np.sin(harmonic * phase)
    voice *= 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    voice *= amplitude / max(float(np.abs(voice).max()), 1e-12)
    noise = 0.01 * amplitude * np.random.default_rng(0).standard_normal(t.size)
    return (voice + noise).astype(np.float32)


def sine_clip(seconds: float = 3.0, sample_rate: int = 16_000, amplitude: float = 0.3) -> bytes:
    """The same vowel as WAV bytes."""
    return to_wav(sine_samples(seconds, sample_rate, amplitude), sample_rate)


def encode(samples: np.ndarray, sample_rate: int, format: str = "WAV", subtype: str = "PCM_16") -> bytes:
    """Samples (frames, or frames x channels) in a container and subtype `to_wav` does not make: float, stereo."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format=format, subtype=subtype)
    return buffer.getvalue()


# ffmpeg output options per format, for what soundfile does not write or writes differently from phones/browsers.
FFMPEG_FORMATS: dict[str, tuple[str, ...]] = {
    "flac": ("-c:a", "flac", "-f", "flac"),
    "ogg": ("-c:a", "libvorbis", "-f", "ogg"),
    "opus": ("-c:a", "libopus", "-f", "ogg"),
    "mp3": ("-c:a", "libmp3lame", "-f", "mp3"),
    "mp3_bare": ("-c:a", "libmp3lame", "-id3v2_version", "0", "-write_xing", "0", "-f", "mp3"),  # starts with a frame
    "m4a": ("-c:a", "aac", "-f", "ipod"),
    "webm": ("-c:a", "libopus", "-f", "webm"),
}


def ffmpeg(*args: str) -> None:
    """Run the bundled ffmpeg (imageio-ffmpeg), the same binary `backend.intake` decodes with."""
    subprocess.run([get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", *args], check=True, timeout=60)


def ffmpeg_encode(wav: bytes, format: str, path: Path) -> bytes:
    """Re-encode a WAV as one of `FFMPEG_FORMATS` at `path`, reusing the file when it is already there."""
    if not path.exists():
        source = path.with_name(path.name + ".source.wav")
        source.write_bytes(wav)
        ffmpeg("-i", str(source), *FFMPEG_FORMATS[format], str(path))
    return path.read_bytes()
