"""What the bot keeps between processes: saved voices and their clips, blocks, the audit trail, the job journal
and the limits every bot process shares.

Each feature has one small interface here (a `Protocol` and the records it takes and returns, in a module named
for what it stores); the use cases in `commands/` call these, never SQL. `commands.storage.sql` implements them
with SQLAlchemy 2 (async) on SQLite (the embedded default, a file under the data directory) or PostgreSQL (by
`VOICEBOT_DATABASE_URL`, so several bot processes share one library and one set of limits); its schema changes
only through the Alembic migrations in `commands/storage/sql/migrations/`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from commands.storage.audit import AuditLog
from commands.storage.clips import ClipStore
from commands.storage.journal import JobJournal
from commands.storage.limits import SharedLimits
from commands.storage.voices import BlockList, VoiceStore


@dataclass(frozen=True)
class Storage:
    """Every store of one process, opened together on one database (`commands.storage.sql.open_storage`)."""

    voices: VoiceStore
    blocks: BlockList
    clips: ClipStore
    audit: AuditLog
    journal: JobJournal
    limits: SharedLimits
    close: Callable[[], Awaitable[None]]
