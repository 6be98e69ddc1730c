"""Reference clips made in code, so tests carry no audio files."""

from __future__ import annotations

import numpy as np

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
