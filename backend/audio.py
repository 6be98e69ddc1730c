"""Audio primitives both sides agree on: read what soundfile reads, check a reference clip, write WAV.

The edge (`commands.audio`) adds content sniffing and compressed formats on top; the backend's web API and
the engine call `read_audio` + `check_clip` again so a request that bypasses the bots is held to the same limits.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from pydantic import BaseModel

from backend.errors import InvalidInput

MIB = 1024 * 1024


class AudioLimits(BaseModel):
    """Limits on a reference clip; defaults suit Qwen3-TTS (it conditions on a few seconds of speech)."""

    max_bytes: int = 10 * MIB
    min_seconds: float = 1.0
    max_seconds: float = 30.0
    min_sample_rate: int = 8_000
    max_sample_rate: int = 192_000
    silence_peak: float = 1e-3  # about -60 dBFS: below this the clip carries no voice


def check_size(nbytes: int, limits: AudioLimits) -> None:
    """Reject oversized uploads before spending time decoding them."""
    if nbytes == 0:
        raise InvalidInput("The reference clip is empty (0 bytes).", code="empty_audio")
    if nbytes > limits.max_bytes:
        raise InvalidInput(
            f"The reference clip is {nbytes / MIB:.1f} MiB; the limit is {limits.max_bytes / MIB:.0f} MiB.",
            code="audio_too_large",
        )


def check_clip(samples: np.ndarray, sample_rate: int, limits: AudioLimits) -> None:
    """Raise a specific `InvalidInput` when a decoded clip cannot serve as a voice reference."""
    if not limits.min_sample_rate <= sample_rate <= limits.max_sample_rate:
        raise InvalidInput(
            f"The reference clip's sample rate is {sample_rate} Hz; it must be between "
            f"{limits.min_sample_rate} and {limits.max_sample_rate} Hz.",
            code="bad_sample_rate",
        )
    if samples.size == 0:
        raise InvalidInput("The reference clip contains no audio samples.", code="empty_audio")
    seconds = samples.size / sample_rate
    if seconds < limits.min_seconds:
        raise InvalidInput(
            f"The reference clip is {seconds:.2f} s long; it must be at least {limits.min_seconds:g} s.",
            code="audio_too_short",
        )
    if seconds > limits.max_seconds:
        raise InvalidInput(
            f"The reference clip is {seconds:.1f} s long; the limit is {limits.max_seconds:g} s. Trim it and retry.",
            code="audio_too_long",
        )
    if not np.isfinite(samples).all():
        raise InvalidInput("The reference clip contains invalid (NaN or infinite) samples.", code="corrupt_audio")
    if float(np.abs(samples).max()) < limits.silence_peak:
        raise InvalidInput("The reference clip is silent: no voice to clone.", code="silent_audio")


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels into float32 mono (soundfile returns frames x channels when always_2d)."""
    data = np.asarray(samples, dtype=np.float32)
    return data.mean(axis=1) if data.ndim == 2 else data


def read_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Decode a WAV/FLAC/OGG file from bytes into float32 mono; corrupt input becomes `InvalidInput`."""
    try:
        samples, sample_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, EOFError) as exc:
        raise InvalidInput(
            "The reference clip could not be decoded: it is corrupt, truncated or not a supported audio file.",
            code="corrupt_audio",
        ) from exc
    return to_mono(samples), int(sample_rate)


def load_reference(data: bytes, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """Size check, decode and clip checks in the order that fails cheapest first."""
    check_size(len(data), limits)
    samples, sample_rate = read_audio(data)
    check_clip(samples, sample_rate, limits)
    return samples, sample_rate


def to_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode float audio as 16-bit PCM mono WAV, clipping to [-1, 1] so loud output cannot wrap around."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(to_mono(samples), -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()
