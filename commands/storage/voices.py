"""Saved voices and who may use them: the records and the interface the voice-library use cases call.

A voice belongs to one member of one workspace (a Discord guild or a Slack team). Scope "me" voices are seen
by their owner only; scope "server" voices by every member of that workspace. Names are unique, case- and
width-insensitively (the use case normalises them: `commands.voice_names`), per owner among "me" voices and
per workspace among "server" voices; a lookup by name finds the member's own voice first, then the server's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

Scope = Literal["me", "server"]


@dataclass(frozen=True)
class Member:
    """A user as the bot sees them: the platform ("discord", "slack"), the workspace (Discord guild id, Slack
    team id; "" in a DM) and the platform's user id."""

    platform: str
    workspace_id: str
    user_id: str

    @property
    def key(self) -> str:
        """The user across workspaces of one platform ("discord:1234"): limits, blocks and forget-me use it."""
        return f"{self.platform}:{self.user_id}"


@dataclass(frozen=True)
class Consent:
    """What the saver confirmed before the voice was stored: the wording verbatim, who and when (UTC)."""

    statement: str
    confirmed_by: str  # Member.key
    confirmed_at: datetime


@dataclass(frozen=True)
class NewVoice:
    """A voice to save. `name` is already checked and `key` its normalised form (`commands.voice_names`)."""

    name: str
    key: str
    owner: Member
    scope: Scope
    clip_sha256: str  # the clip in the ClipStore
    transcript: str | None
    consent: Consent


@dataclass(frozen=True)
class Voice:
    """A saved voice as stored."""

    id: str
    name: str
    key: str
    owner: Member
    scope: Scope
    clip_sha256: str
    transcript: str | None
    consent: Consent
    created_at: datetime
    uses: int = 0
    last_used_at: datetime | None = None


class VoiceStore(Protocol):
    """Saved voices. Every method raises `StorageUnavailable` when the database fails."""

    async def add(self, voice: NewVoice) -> Voice:
        """Store a new voice; `NameTaken` if its key is taken where it would be visible (a race included)."""

    async def get(self, voice_id: str) -> Voice | None: ...

    async def resolve(self, member: Member, key: str) -> Voice | None:
        """The voice `member` means by `key`: their own "me" voice first, then their workspace's."""

    async def visible_to(self, member: Member, prefix: str = "", limit: int = 25) -> list[Voice]:
        """The member's own voices, then the workspace's, whose key starts with `prefix` (autocomplete)."""

    async def owned_by(self, platform: str, user_id: str) -> list[Voice]:
        """Every voice the user saved, in every workspace (for forget-me and info)."""

    async def rename(self, voice_id: str, name: str, key: str) -> Voice:
        """`NameTaken` if the new key is taken; `LookupError` if the voice is gone."""

    async def delete(self, voice_id: str) -> bool:
        """False if it was already gone."""

    async def count_owned(self, member: Member) -> int: ...

    async def mark_used(self, voice_id: str, at: datetime) -> None: ...

    async def references(self, clip_sha256: str) -> int:
        """How many voices, and journaled jobs not yet delivered or failed, use that clip (a clip is deleted
        when this is 0: a voice deleted while its job is queued keeps its clip until the job ends)."""


class BlockList(Protocol):
    """Members an admin stopped from saving or using voices in one workspace."""

    async def block(self, platform: str, workspace_id: str, user_id: str, *, by: str, reason: str = "") -> None: ...

    async def unblock(self, platform: str, workspace_id: str, user_id: str) -> bool: ...

    async def is_blocked(self, member: Member) -> bool: ...
