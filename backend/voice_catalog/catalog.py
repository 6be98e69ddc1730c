"""What a saved voice is to the backend's HTTP API, and the interface any store of them implements.

The bots keep their voice library in `commands/` (SQL, per member and workspace); the backend cannot import
that layer, so the OpenAI-compatible app takes a `VoiceCatalog` instead: async, and told who asks (`Caller`),
so a catalog can show each caller their own voices. The backend's own store is a directory
(`backend.voice_catalog.directory`), blocking file work that `ThreadedVoiceCatalog` runs in worker threads;
the bots' library is another (`commands.api_voices`, served by `voicebot serve-api`).

Every saved voice carries the consent given for it: the statement the uploader confirmed, verbatim with its
version, who confirmed it (the caller's identity as the web app knows it: a fingerprint of the bearer token,
never the token) and when.
"""

from __future__ import annotations

import asyncio
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


class Caller(Protocol):
    """Who asks, as the web app's authentication made them (a Starlette user): `display_name` is what a consent
    record and the logs name them by, never a secret."""

    @property
    def display_name(self) -> str: ...


class VoiceCatalog(Protocol):
    """Saved voices as the API serves them; `caller` is whoever asks, so a catalog can show each caller only the
    voices they may use."""

    def check_name(self, name: str) -> str:
        """`name` as it would be saved, or `InvalidInput` saying what a name may hold (checked before the clip
        is decoded)."""

    async def list(self, caller: Caller) -> list[SavedVoice]:
        """The voices `caller` may use, in the order they are offered."""

    async def find(self, caller: Caller, name: str) -> SavedVoice | None:
        """The voice `caller` means by `name` (its id, or its name in any case), or None when there is none they
        may use."""

    async def clip(self, voice: SavedVoice) -> bytes:
        """The voice's reference clip (a 16-bit mono WAV, checked when it was saved), byte for byte as stored."""

    async def add(self, caller: Caller, name: str, clip_wav: bytes, ref_text: str | None,
                  consent: Consent) -> SavedVoice:
        """Store a checked clip under `name`; `InvalidInput` subclasses when it cannot be (name taken, the
        catalog or the caller at their limit)."""

    async def delete(self, caller: Caller, name: str) -> SavedVoice | None:
        """Remove the voice `caller` means by `name`; the voice removed, or None when there is none they may
        remove."""


class BlockingVoiceCatalog(Protocol):
    """A store of saved voices with blocking methods (files), every caller seeing the same voices; `caller` is
    the identity (`Caller.display_name`) of whoever asks, for the logs."""

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


class ThreadedVoiceCatalog:
    """A `BlockingVoiceCatalog` as a `VoiceCatalog`: each call in a worker thread, so file work never blocks the
    event loop; names follow this module's rule (`check_voice_name`)."""

    def __init__(self, catalog: BlockingVoiceCatalog) -> None:
        self.catalog = catalog

    def check_name(self, name: str) -> str:
        return check_voice_name(name)

    async def list(self, caller: Caller) -> list[SavedVoice]:
        return await asyncio.to_thread(self.catalog.list, caller.display_name)

    async def find(self, caller: Caller, name: str) -> SavedVoice | None:
        return await asyncio.to_thread(self.catalog.find, caller.display_name, name)

    async def clip(self, voice: SavedVoice) -> bytes:
        return await asyncio.to_thread(self.catalog.clip, voice)

    async def add(self, caller: Caller, name: str, clip_wav: bytes, ref_text: str | None,
                  consent: Consent) -> SavedVoice:
        return await asyncio.to_thread(self.catalog.add, caller.display_name, name, clip_wav, ref_text, consent)

    async def delete(self, caller: Caller, name: str) -> SavedVoice | None:
        return await asyncio.to_thread(self.catalog.delete, caller.display_name, name)
