"""Reference clips of saved voices, content-addressed by the SHA-256 of the normalised WAV the intake made.

The same clip saved twice is stored once; a clip is deleted when its last voice goes. Files live under
`<data_dir>/clips/`, so PostgreSQL deployments with several bot processes need that directory shared (or one
process saving voices).
"""

from __future__ import annotations

from typing import Protocol


class ClipStore(Protocol):
    async def put(self, wav: bytes) -> str:
        """Store `wav` (at most the configured size) and return its SHA-256 hex digest."""

    async def get(self, sha256: str) -> bytes:
        """The clip's bytes; `LookupError` if it is gone (deleted, or the directory is not shared)."""

    async def delete(self, sha256: str) -> bool: ...
