"""Journal entries are leased to the process running them (`holder`, `renewed_at`), so a starting process takes
over only the jobs of a process that is gone or released them, never those a live sibling runs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Entries journaled before this revision have no holder: the next process to start takes them over, as
    # before.
    with op.batch_alter_table("journal") as batch:
        batch.add_column(sa.Column("holder", sa.Text))
        batch.add_column(sa.Column("renewed_at", sa.Double, nullable=False, server_default="0"))
        batch.create_index("ix_journal_holder", ["holder"])


def downgrade() -> None:
    with op.batch_alter_table("journal") as batch:
        batch.drop_index("ix_journal_holder")
        batch.drop_column("renewed_at")
        batch.drop_column("holder")
