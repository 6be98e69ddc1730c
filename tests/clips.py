"""Reference clips made in code, so tests carry no audio files."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
from imageio_ffmpeg import get_ffmpeg_exe

from backend.audio import to_wav


def sine_samples(seconds: float = 3.0, sample_rate: int = 16_000, amplitude: float = 0.3) -> np.ndarray:
    """A voiced-like tone (220 Hz with a 3 Hz tremolo) plus a little noise."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = amplitude * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    noise = 0.01 * amplitude * np.random.default_rng(0).standard_normal(t.size)
    return (tone + noise).astype(np.float32)


def sine_clip(seconds: float = 3.0, sample_rate: int = 16_000, amplitude: float = 0.3) -> bytes:
    """The same tone as WAV bytes."""
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
    """Run the bundled ffmpeg (imageio-ffmpeg), the same binary `commands.audio` decodes with."""
    subprocess.run([get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", *args], check=True, timeout=60)


def ffmpeg_encode(wav: bytes, format: str, path: Path) -> bytes:
    """Re-encode a WAV as one of `FFMPEG_FORMATS` at `path`, reusing the file when it is already there."""
    if not path.exists():
        source = path.with_name(path.name + ".source.wav")
        source.write_bytes(wav)
        ffmpeg("-i", str(source), *FFMPEG_FORMATS[format], str(path))
    return path.read_bytes()
