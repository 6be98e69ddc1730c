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


class PlainText(TypeDecorator[str]):
    """Text as both databases store it: NUL (PostgreSQL refuses it in text) and lone surrogates (not UTF-8,
    refused by both drivers) become U+FFFD, so a user's odd character never turns into "database unavailable".
    Unbounded, like SQLite's TEXT: lengths are the use cases' business, and both databases behave the same."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None:
            return None
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in value)
        return value


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


SHA256 = String(64)  # hex digests the bot computes

voices = Table(
    "voices", metadata,
    Column("id", PlainText, primary_key=True),
    Column("platform", PlainText, nullable=False),
    Column("workspace_id", PlainText, nullable=False),
    Column("owner_id", PlainText, nullable=False),
    Column("scope", PlainText, nullable=False),
    Column("name", PlainText, nullable=False),
    Column("key", PlainText, nullable=False),
    Column("clip_sha256", SHA256, nullable=False, index=True),
    Column("transcript", PlainText),
    Column("consent_statement", PlainText, nullable=False),
    Column("consent_by", PlainText, nullable=False),
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
    Column("platform", PlainText, primary_key=True),
    Column("workspace_id", PlainText, primary_key=True),
    Column("user_id", PlainText, primary_key=True),
    Column("blocked_by", PlainText, nullable=False),
    Column("reason", PlainText, nullable=False, server_default=""),
    Column("blocked_at", UTCDateTime, nullable=False),
)

audit_entries = Table(
    "audit_entries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("platform", PlainText, nullable=False),
    Column("workspace_id", PlainText, nullable=False),
    Column("channel_id", PlainText, nullable=False),
    Column("user_id", PlainText, nullable=False),
    Column("job_id", PlainText, nullable=False),
    Column("kind", PlainText, nullable=False),
    Column("voice_id", PlainText),
    Column("voice_name", PlainText),
    Column("text", PlainText),
    Column("text_sha256", SHA256, nullable=False),
    Column("outcome", PlainText, nullable=False),
    Column("audio_seconds", Double, nullable=False, server_default="0"),
)
Index("ix_audit_workspace_at", audit_entries.c.platform, audit_entries.c.workspace_id, audit_entries.c.at)
Index("ix_audit_user", audit_entries.c.platform, audit_entries.c.user_id)

journal = Table(
    "journal", metadata,
    Column("job_id", PlainText, primary_key=True),
    Column("platform", PlainText, nullable=False),
    Column("workspace_id", PlainText, nullable=False),
    Column("user_id", PlainText, nullable=False),
    Column("route", JSON, nullable=False),
    Column("text", PlainText, nullable=False),
    Column("language", PlainText, nullable=False),
    Column("clip_sha256", SHA256, nullable=False, index=True),
    Column("transcript", PlainText),
    Column("voice_id", PlainText),
    Column("variant", PlainText),
    Column("accepted_at", UTCDateTime, nullable=False),
    Column("state", PlainText, nullable=False),
    Column("result_sha256", SHA256),
    Column("error", PlainText),
    # The process running the job (`lease.Holder`), None once released (suspended by a clean shutdown); other
    # processes take the entry over only when it has no holder or its lease is stale (`lease.STALE_S`).
    Column("holder", PlainText, index=True),
    Column("renewed_at", Double, nullable=False, server_default="0"),
)
Index("ix_journal_platform_state", journal.c.platform, journal.c.state)
Index("ix_journal_user", journal.c.platform, journal.c.user_id)

# One row per admitted job: its start counts for the cooldown until it is refunded or expires; it counts as
# in flight until the queue releases it, or until its process stops renewing it (a crashed process).
job_starts = Table(
    "job_starts", metadata,
    Column("user_key", PlainText, primary_key=True),
    Column("job_id", PlainText, primary_key=True),
    Column("started_at", Double, nullable=False, index=True),
    Column("in_flight", Boolean, nullable=False),
    Column("holder", PlainText, nullable=False, index=True),  # the process (its storage instance) running it
    Column("renewed_at", Double, nullable=False),
)

# The OpenAI-compatible API's keys (`commands.storage.api_keys`): the key's SHA-256, never the key; one per member
# and workspace.
api_keys = Table(
    "api_keys", metadata,
    Column("id", PlainText, primary_key=True),
    Column("key_sha256", SHA256, nullable=False),
    Column("prefix", PlainText, nullable=False),
    Column("platform", PlainText, nullable=False),
    Column("workspace_id", PlainText, nullable=False),
    Column("user_id", PlainText, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
)
Index("uq_api_keys_key_sha256", api_keys.c.key_sha256, unique=True)
Index("uq_api_keys_member", api_keys.c.platform, api_keys.c.workspace_id, api_keys.c.user_id, unique=True)
Index("ix_api_keys_user", api_keys.c.platform, api_keys.c.user_id)
