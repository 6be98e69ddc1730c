"""What the bot keeps between processes: saved voices and their clips, blocks, the audit trail, the job journal,
the limits every bot process shares and the API's keys.

Each feature has one small interface here (a `Protocol` and the records it takes and returns, in a module named
for what it stores); the use cases in `commands/` call these, never SQL. `commands.storage.sql` implements them
with SQLAlchemy 2 (async) on SQLite (the embedded default, a file under the data directory) or PostgreSQL (by
`VOICEBOT_DATABASE_URL`, so several bot processes share one library and one set of limits); its schema changes
only through the Alembic migrations in `commands/storage/sql/migrations/`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from commands.storage.api_keys import ApiKeyStore
from commands.storage.audit import AuditLog
from commands.storage.clips import ClipStore
from commands.storage.journal import JobJournal
from commands.storage.limits import SharedLimits
from commands.storage.voices import BlockList, VoiceStore


@dataclass(frozen=True)
class ForgetReport:
    """What `Storage.forget_user` deleted, for the user's confirmation ("3 voices, 2 clips, ...").

    Blocks an admin put ON the user stay (forgetting must not lift a block); blocks the user made as an admin
    stay too, so the people they blocked stay blocked, but no longer name them (`blocks_made` counts those).
    """

    voices: int = 0  # saved voices, in every workspace of the platform
    clips: int = 0  # clip files deleted: reference clips no other voice uses, and kept results of their jobs
    audit_entries: int = 0
    journal_entries: int = 0
    blocks_made: int = 0  # blocks by this user, kept with the blocker's name removed
    api_keys: int = 0  # their keys of the OpenAI-compatible API, in every workspace
    # every reference clip their voices and jobs used, deleted or still used by another voice: what the
    # backend's voice-prompt cache must forget (`forget_voices`)
    clip_sha256s: tuple[str, ...] = ()


@dataclass(frozen=True)
class Storage:
    """Every store of one process, opened together on one database (`commands.storage.sql.open_storage`)."""

    voices: VoiceStore
    blocks: BlockList
    clips: ClipStore
    audit: AuditLog
    journal: JobJournal
    limits: SharedLimits
    api_keys: ApiKeyStore
    forget_user: Callable[[str, str], Awaitable[ForgetReport]]
    """`forget_user(platform, user_id)`: every voice, clip, audit and journal entry and API key of the user,
    everywhere."""
    close: Callable[[], Awaitable[None]]
