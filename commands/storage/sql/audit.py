"""The audit trail in SQL (`commands.storage.audit`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select

from commands.storage.audit import AuditEntry
from commands.storage.sql.database import Database
from commands.storage.sql.tables import audit_entries

FIELDS = [field for field in AuditEntry.__dataclass_fields__]


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(**{field: getattr(row, field) for field in FIELDS})


class SqlAuditLog:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def record(self, entry: AuditEntry) -> None:
        async with self._db.transaction("writing the audit trail") as connection:
            await connection.execute(insert(audit_entries).values({field: getattr(entry, field) for field in FIELDS}))

    async def recent(self, platform: str, workspace_id: str, *, limit: int = 20,
                     user_id: str | None = None) -> list[AuditEntry]:
        query = select(audit_entries).where(audit_entries.c.platform == platform,
                                            audit_entries.c.workspace_id == workspace_id)
        if user_id is not None:
            query = query.where(audit_entries.c.user_id == user_id)
        query = query.order_by(audit_entries.c.at.desc(), audit_entries.c.id.desc()).limit(limit)
        async with self._db.transaction("reading the audit trail") as connection:
            return [_entry(row) for row in await connection.execute(query)]

    async def prune(self, older_than: datetime) -> int:
        async with self._db.transaction("pruning the audit trail") as connection:
            return (await connection.execute(delete(audit_entries).where(audit_entries.c.at < older_than))).rowcount
