"""The audit trail: who generated what, with which voice, where and when.

The text is kept or only hashed (`VOICEBOT_AUDIT_TEXT=keep|hash`, hash by default), and entries older than the
retention (`VOICEBOT_AUDIT_RETENTION_DAYS`, 30 by default) are pruned. Admins query their own workspace only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    platform: str
    workspace_id: str
    channel_id: str
    user_id: str
    job_id: str
    kind: str  # "clone" (a one-off clip) or "say" (a saved voice)
    voice_id: str | None
    voice_name: str | None
    text: str | None  # None when only the hash is kept
    text_sha256: str
    outcome: str  # "done", or the failure's error code
    audio_seconds: float = 0.0


class AuditLog(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...

    async def recent(self, platform: str, workspace_id: str, *, limit: int = 20,
                     user_id: str | None = None) -> list[AuditEntry]:
        """Newest first, one workspace only."""

    async def prune(self, older_than: datetime) -> int:
        """Delete entries before `older_than`; how many went."""
