"""API keys of the OpenAI-compatible API (`voicebot serve-api`): the records and the interface the use cases
(`commands.api_keys`) call.

A member holds at most one key per workspace; issuing a new one replaces it. Only the key's SHA-256 is kept
(the key itself is shown once, to its holder), with a few characters of it for display, so a leaked database
holds no usable key, and a request's key is found by its digest: no comparison of secrets whose time could
leak how much of a guess was right.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from commands.storage.voices import Member


@dataclass(frozen=True)
class ApiKey:
    """A key as stored: never the key, only what identifies and shows it."""

    id: str
    member: Member
    prefix: str  # the key's first characters, for the holder to recognise it ("vb_Ab3x…")
    created_at: datetime
    last_used_at: datetime | None = None


class ApiKeyStore(Protocol):
    """Every method raises `StorageUnavailable` when the database fails."""

    async def replace(self, member: Member, key_sha256: str, prefix: str, at: datetime) -> ApiKey:
        """The member's new key in their workspace; their previous one there is deleted in the same
        transaction."""

    async def find(self, key_sha256: str) -> ApiKey | None:
        """The key with this digest, if it exists."""

    async def revoke(self, member: Member) -> bool:
        """Delete the member's key in their workspace; False when they had none."""

    async def mark_used(self, key_id: str, at: datetime) -> None: ...
