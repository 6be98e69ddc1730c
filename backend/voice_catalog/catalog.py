"""What a saved voice is to the backend's HTTP API, and the interface any store of them implements.

The bots keep their voice library in `commands/` (SQL, per member and workspace); the backend cannot import
that layer, so the web app takes a `VoiceCatalog` instead. The one here is a directory
(`backend.voice_catalog.directory`); another (the bots' library behind an adapter) can be passed in its place.

Every saved voice carries the consent given for it: the statement the uploader confirmed, verbatim with its
version, who confirmed it (the caller's identity as the web app knows it: a fingerprint of the bearer token,
never the token) and when.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from backend.errors import InvalidInput
from backend.validation import shown

CONSENT_VERSION = 1
CONSENT_ID = f"voicebot-voice-consent-v{CONSENT_VERSION}"  # what an upload sends as `consent` to confirm it
CONSENT_STATEMENT = (
    "The voice in this clip is my own, or the person it belongs to has agreed that I save it on this server "
    "and that anyone with access to this API can make it say new things. I will not use it to deceive, "
    "impersonate or harm anyone."
)
MAX_NAME_CHARS = 64
# Letters, digits, "-" and "_", starting with a letter or digit: safe as a file name on every system, in a URL
# and in a JSON string, and never "." or "..".
_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_NAME_CHARS - 1}}}")


class VoiceNameTaken(InvalidInput):
    code = "voice_name_taken"


class VoiceLimitReached(InvalidInput):
    code = "voice_limit_reached"


def check_voice_name(name: str) -> str:
    """`name` as given if it is a valid voice name, else `InvalidInput` saying what a name may hold."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"The voice name {shown(name)} is not valid: use 1 to {MAX_NAME_CHARS} letters, digits, '-' or '_', "
            "starting with a letter or digit.", code="invalid_voice_name")
    return name


def voice_id(name: str) -> str:
    """The id a name is saved and found under: names are unique whatever their case ("Ana" is "ana")."""
    return check_voice_name(name).lower()


@dataclass(frozen=True)
class Consent:
    """What the uploader confirmed before the voice was stored."""

    statement_id: str
    version: int
    statement: str
    confirmed_by: str  # the caller's identity (a token fingerprint), never a secret
    confirmed_at: datetime  # UTC


@dataclass(frozen=True)
class SavedVoice:
    """A saved voice as listed: `id` is its name in lowercase, what requests name it by."""

    id: str
    name: str
    created_at: datetime
    ref_text: str | None
    clip_sha256: str
    consent: Consent


class VoiceCatalog(Protocol):
    """Saved voices. Blocking methods (the web app calls them from worker threads); `caller` is the identity
    of whoever asks, so a catalog can show each caller only the voices they may use."""

    def list(self, caller: str) -> list[SavedVoice]:
        """The voices `caller` may use, oldest first."""

    def find(self, caller: str, name: str) -> SavedVoice | None:
        """The voice `caller` means by `name` (any case), or None when there is none they may use."""

    def clip(self, voice: SavedVoice) -> bytes:
        """The voice's reference clip (a 16-bit mono WAV, checked when it was saved)."""

    def add(self, caller: str, name: str, clip_wav: bytes, ref_text: str | None, consent: Consent) -> SavedVoice:
        """Store a checked clip under `name`; `VoiceNameTaken` if the name is in use, `VoiceLimitReached` when
        the catalog is full."""

    def delete(self, caller: str, name: str) -> SavedVoice | None:
        """Remove the voice `caller` means by `name`, clip and record; the voice removed, or None when there is
        none they may remove."""
