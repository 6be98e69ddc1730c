"""API keys in SQL (`commands.storage.api_keys`): one row per member and workspace (a unique index), found by
the key's digest (another)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from commands.storage.api_keys import ApiKey
from commands.storage.sql.database import Database
from commands.storage.sql.tables import api_keys
from commands.storage.voices import Member


def _key(row: Any) -> ApiKey:
    return ApiKey(id=row.id, member=Member(row.platform, row.workspace_id, row.user_id), prefix=row.prefix,
                  created_at=row.created_at, last_used_at=row.last_used_at)


def _of(member: Member) -> Any:
    return ((api_keys.c.platform == member.platform) & (api_keys.c.workspace_id == member.workspace_id)
            & (api_keys.c.user_id == member.user_id))


class SqlApiKeyStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def replace(self, member: Member, key_sha256: str, prefix: str, at: datetime) -> ApiKey:
        row = {"id": uuid.uuid4().hex, "key_sha256": key_sha256, "prefix": prefix, "platform": member.platform,
               "workspace_id": member.workspace_id, "user_id": member.user_id, "created_at": at}
        async with self._db.transaction("issuing an API key") as connection:
            await self._db.lock(connection, f"api_key:{member.platform}:{member.workspace_id}:{member.user_id}")
            await connection.execute(delete(api_keys).where(_of(member)))
            await connection.execute(insert(api_keys).values(row))
            saved = (await connection.execute(select(api_keys).where(api_keys.c.id == row["id"]))).one()
        return _key(saved)

    async def find(self, key_sha256: str) -> ApiKey | None:
        async with self._db.transaction("checking an API key") as connection:
            row = (await connection.execute(select(api_keys).where(api_keys.c.key_sha256 == key_sha256))).first()
        return None if row is None else _key(row)

    async def revoke(self, member: Member) -> bool:
        async with self._db.transaction("revoking an API key") as connection:
            return (await connection.execute(delete(api_keys).where(_of(member)))).rowcount > 0

    async def mark_used(self, key_id: str, at: datetime) -> None:
        async with self._db.transaction("recording an API key's use") as connection:
            await connection.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=at))
