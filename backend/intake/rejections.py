"""The two ways an upload fails before it is judged as a voice: it is not audio, or it cannot be decoded."""

from __future__ import annotations

from backend.errors import InvalidInput

SUPPORTED = "WAV, MP3, M4A, OGG, Opus, FLAC or WebM"


def corrupt(reason: str) -> InvalidInput:
    return InvalidInput(f"The reference clip could not be decoded: {reason}.", code="corrupt_audio")


def not_audio(what: str) -> InvalidInput:
    return InvalidInput(f"The reference clip {what}. Send a voice recording ({SUPPORTED}).", code="not_audio")
