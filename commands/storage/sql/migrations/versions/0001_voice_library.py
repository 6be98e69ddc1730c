"""The voice library: voices, blocks, the audit trail, the job journal and the shared limits.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from commands.storage.sql.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SHA256 = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "voices",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("workspace_id", sa.Text, nullable=False),
        sa.Column("owner_id", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("clip_sha256", SHA256, nullable=False),
        sa.Column("transcript", sa.Text),
        sa.Column("consent_statement", sa.Text, nullable=False),
        sa.Column("consent_by", sa.Text, nullable=False),
        sa.Column("consent_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("uses", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_used_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_voices"),
    )
    op.create_index("ix_voices_clip_sha256", "voices", ["clip_sha256"])
    op.create_index("ix_voices_owner", "voices", ["platform", "owner_id"])
    for scope, columns in (("me", ["platform", "workspace_id", "owner_id", "key"]),
                           ("server", ["platform", "workspace_id", "key"])):
        where = sa.text(f"scope = '{scope}'")
        op.create_index("uq_voices_own_key" if scope == "me" else "uq_voices_server_key", "voices", columns,
                        unique=True, sqlite_where=where, postgresql_where=where)

    op.create_table(
        "blocks",
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("workspace_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("blocked_by", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("blocked_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("platform", "workspace_id", "user_id", name="pk_blocks"),
    )

    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("workspace_id", sa.Text, nullable=False),
        sa.Column("channel_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("voice_id", sa.Text),
        sa.Column("voice_name", sa.Text),
        sa.Column("text", sa.Text),
        sa.Column("text_sha256", SHA256, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("audio_seconds", sa.Double, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_entries"),
    )
    op.create_index("ix_audit_entries_at", "audit_entries", ["at"])
    op.create_index("ix_audit_workspace_at", "audit_entries", ["platform", "workspace_id", "at"])
    op.create_index("ix_audit_user", "audit_entries", ["platform", "user_id"])

    op.create_table(
        "journal",
        sa.Column("job_id", sa.Text, nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("workspace_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("route", sa.JSON, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("clip_sha256", SHA256, nullable=False),
        sa.Column("transcript", sa.Text),
        sa.Column("voice_id", sa.Text),
        sa.Column("variant", sa.Text),
        sa.Column("accepted_at", UTCDateTime, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("result_sha256", SHA256),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("job_id", name="pk_journal"),
    )
    op.create_index("ix_journal_clip_sha256", "journal", ["clip_sha256"])
    op.create_index("ix_journal_platform_state", "journal", ["platform", "state"])
    op.create_index("ix_journal_user", "journal", ["platform", "user_id"])

    op.create_table(
        "job_starts",
        sa.Column("user_key", sa.Text, nullable=False),
        sa.Column("job_id", sa.Text, nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("in_flight", sa.Boolean, nullable=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("renewed_at", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("user_key", "job_id", name="pk_job_starts"),
    )
    op.create_index("ix_job_starts_started_at", "job_starts", ["started_at"])
    op.create_index("ix_job_starts_holder", "job_starts", ["holder"])


def downgrade() -> None:
    for table in ("job_starts", "journal", "audit_entries", "blocks", "voices"):
        op.drop_table(table)
