"""The limits a reference clip is held to, and the checks that need only numbers (bytes, rate, seconds).

These run before any sample is decoded: a header's sample rate and length decide how much memory decoding
may take, so they are checked first and the decoders size their buffers from the limits, never the header.
"""

from __future__ import annotations

from pydantic import BaseModel

from backend.errors import InvalidInput

MIB = 1024 * 1024


class AudioLimits(BaseModel):
    """Limits on a reference clip; defaults suit Qwen3-TTS (it conditions on a few seconds of speech).

    `min_voiced_seconds`: how much of the clip the voice-activity detector must call speech. WebRTC's VAD
    marks the first 3-6 frames of any steady sound as speech while it adapts (0.09-0.18 s), so the bar sits
    above that; real speech at normal level is 75-100 % voiced.
    """

    max_bytes: int = 10 * MIB
    min_seconds: float = 1.0
    max_seconds: float = 30.0
    min_sample_rate: int = 8_000
    max_sample_rate: int = 192_000
    min_voiced_seconds: float = 0.3

    def max_frames(self, sample_rate: int) -> int:
        """The most frames a valid clip holds at `sample_rate`: the decoders stop one frame past it."""
        return int(self.max_seconds * sample_rate)


def check_size(nbytes: int, limits: AudioLimits) -> None:
    """Reject oversized uploads before spending time decoding them."""
    if nbytes == 0:
        raise InvalidInput("The reference clip is empty (0 bytes).", code="empty_audio")
    if nbytes > limits.max_bytes:
        raise InvalidInput(
            f"The reference clip is {nbytes / MIB:.1f} MiB; the limit is {limits.max_bytes / MIB:.0f} MiB.",
            code="audio_too_large",
        )


def check_sample_rate(sample_rate: int, limits: AudioLimits) -> None:
    """Checked before decoding: the output buffer is `max_seconds x sample_rate`, so the rate must be sane."""
    if not limits.min_sample_rate <= sample_rate <= limits.max_sample_rate:
        raise InvalidInput(
            f"The reference clip's sample rate is {sample_rate} Hz; it must be between "
            f"{limits.min_sample_rate} and {limits.max_sample_rate} Hz.",
            code="bad_sample_rate",
        )


def check_declared_length(frames: int, sample_rate: int, limits: AudioLimits) -> None:
    """Refuse a header that declares more audio than a valid clip holds, before decoding any of it.

    FLAC and Vorbis squeeze digital silence by four orders of magnitude: 10 MiB can declare 100+ hours.
    """
    if frames > limits.max_frames(sample_rate):
        raise InvalidInput(
            f"The reference clip declares {frames / sample_rate:.1f} s of audio; the limit is "
            f"{limits.max_seconds:g} s. Trim it and retry.",
            code="audio_too_long",
        )


def check_length(frames: int, sample_rate: int, limits: AudioLimits) -> None:
    """The decoded length; a decoder that stopped at its cap (`max_frames + 1`) reports only 'longer than'."""
    seconds = frames / sample_rate
    if frames == 0:
        raise InvalidInput("The reference clip contains no audio samples.", code="empty_audio")
    if seconds < limits.min_seconds:
        raise InvalidInput(
            f"The reference clip is {seconds:.2f} s long; it must be at least {limits.min_seconds:g} s.",
            code="audio_too_short",
        )
    if frames > limits.max_frames(sample_rate):
        raise InvalidInput(
            f"The reference clip is longer than the {limits.max_seconds:g} s limit. Trim it and retry.",
            code="audio_too_long",
        )
