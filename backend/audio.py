"""Audio out: the WAV every generated clip (and every checked reference clip) is sent as, and read back.

Reading uploads is `backend.intake`'s job: it decodes within a memory budget and judges the clip.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels into float32 mono (soundfile returns frames x channels when always_2d)."""
    data = np.asarray(samples, dtype=np.float32)
    return data.mean(axis=1) if data.ndim == 2 else data


def to_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode float audio as 16-bit PCM mono WAV, clipping to [-1, 1] so loud output cannot wrap around."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(to_mono(samples), -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float audio as raw 16-bit little-endian PCM, converted exactly as `to_wav` converts it (libsndfile's
    clipping and rounding), so a streamed clip carries the same samples as the same clip sent whole."""
    buffer = io.BytesIO()
    # RAW has no header: the rate argument is required but unused
    sf.write(buffer, np.clip(to_mono(samples), -1.0, 1.0), 24_000, format="RAW", subtype="PCM_16", endian="LITTLE")
    return buffer.getvalue()


def from_pcm16(pcm: bytes) -> np.ndarray:
    """Raw 16-bit little-endian PCM as float32 samples, scaled as `read_samples` scales a WAV's (libsndfile's)."""
    samples, _ = sf.read(io.BytesIO(pcm), samplerate=24_000, channels=1, format="RAW", subtype="PCM_16",
                         endian="LITTLE", dtype="float32")
    return samples


def read_samples(wav: bytes) -> np.ndarray:
    """A generated clip's WAV (as `to_wav` writes it) back to float32 mono samples."""
    samples, _ = sf.read(io.BytesIO(wav), dtype="float32", always_2d=False)
    return to_mono(samples)
