"""The schema as SQLAlchemy Core tables: what the stores query and what the migrations create.

Changing a table here means a new migration in `migrations/versions/` (the test `test_migrations` compares
the two). Times of records are UTC `DateTime`s (stored naive, returned aware); the shared limits keep
wall-clock seconds (`Double`), the unit the job queue counts in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON, Boolean, Column, DateTime, Double, Index, Integer, MetaData, String, Table, Text, TypeDecorator, text,
)

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s", "pk": "pk_%(table_name)s",
})


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (no time zones) and PostgreSQL alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the stores take aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


ID = String(64)  # platform ids (Discord snowflakes, Slack ids), job ids, voice ids
SHA256 = String(64)

voices = Table(
    "voices", metadata,
    Column("id", ID, primary_key=True),
    Column("platform", String(16), nullable=False),
    Column("workspace_id", ID, nullable=False),
    Column("owner_id", ID, nullable=False),
    Column("scope", String(8), nullable=False),
    Column("name", String(128), nullable=False),
    Column("key", String(128), nullable=False),
    Column("clip_sha256", SHA256, nullable=False, index=True),
    Column("transcript", Text),
    Column("consent_statement", Text, nullable=False),
    Column("consent_by", String(96), nullable=False),
    Column("consent_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("last_used_at", UTCDateTime),
)
# One name per owner among "me" voices, one per workspace among "server" voices: the database decides races.
Index("uq_voices_own_key", voices.c.platform, voices.c.workspace_id, voices.c.owner_id, voices.c.key, unique=True,
      sqlite_where=text("scope = 'me'"), postgresql_where=text("scope = 'me'"))
Index("uq_voices_server_key", voices.c.platform, voices.c.workspace_id, voices.c.key, unique=True,
      sqlite_where=text("scope = 'server'"), postgresql_where=text("scope = 'server'"))
Index("ix_voices_owner", voices.c.platform, voices.c.owner_id)

blocks = Table(
    "blocks", metadata,
    Column("platform", String(16), primary_key=True),
    Column("workspace_id", ID, primary_key=True),
    Column("user_id", ID, primary_key=True),
    Column("blocked_by", String(96), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("blocked_at", UTCDateTime, nullable=False),
)

audit_entries = Table(
    "audit_entries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("platform", String(16), nullable=False),
    Column("workspace_id", ID, nullable=False),
    Column("channel_id", ID, nullable=False),
    Column("user_id", ID, nullable=False),
    Column("job_id", ID, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("voice_id", ID),
    Column("voice_name", String(128)),
    Column("text", Text),
    Column("text_sha256", SHA256, nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("audio_seconds", Double, nullable=False, server_default="0"),
)
Index("ix_audit_workspace_at", audit_entries.c.platform, audit_entries.c.workspace_id, audit_entries.c.at)
Index("ix_audit_user", audit_entries.c.platform, audit_entries.c.user_id)

journal = Table(
    "journal", metadata,
    Column("job_id", ID, primary_key=True),
    Column("platform", String(16), nullable=False),
    Column("workspace_id", ID, nullable=False),
    Column("user_id", ID, nullable=False),
    Column("route", JSON, nullable=False),
    Column("text", Text, nullable=False),
    Column("language", String(32), nullable=False),
    Column("clip_sha256", SHA256, nullable=False, index=True),
    Column("transcript", Text),
    Column("voice_id", ID),
    Column("variant", String(64)),
    Column("accepted_at", UTCDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("result_sha256", SHA256),
    Column("error", Text),
)
Index("ix_journal_platform_state", journal.c.platform, journal.c.state)
Index("ix_journal_user", journal.c.platform, journal.c.user_id)

# One row per admitted job: its start counts for the cooldown until it is refunded or expires; it counts as
# in flight until the queue releases it, or until its process stops renewing it (a crashed process).
job_starts = Table(
    "job_starts", metadata,
    Column("user_key", String(96), primary_key=True),
    Column("job_id", ID, primary_key=True),
    Column("started_at", Double, nullable=False, index=True),
    Column("in_flight", Boolean, nullable=False),
    Column("holder", String(32), nullable=False, index=True),  # the process (its storage instance) running it
    Column("renewed_at", Double, nullable=False),
)
