"""API keys of the OpenAI-compatible API (`voicebot serve-api`): one per member and workspace, kept as a
SHA-256 digest.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("key_sha256", sa.String(64), nullable=False),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("workspace_id", sa.Text, nullable=False),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("last_used_at", sa.DateTime),
    )
    op.create_index("uq_api_keys_key_sha256", "api_keys", ["key_sha256"], unique=True)
    op.create_index("uq_api_keys_member", "api_keys", ["platform", "workspace_id", "user_id"], unique=True)
    op.create_index("ix_api_keys_user", "api_keys", ["platform", "user_id"])


def downgrade() -> None:
    op.drop_table("api_keys")
