"""Saved voices and blocks in SQL (`commands.storage.voices`): names are unique by partial unique indexes, so
two processes saving the same name at once get one voice and one `NameTaken`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from commands.storage.errors import NameTaken
from commands.storage.sql.database import Database
from commands.storage.sql.tables import blocks, journal, voices
from commands.storage.voices import Consent, Member, NewVoice, Voice

UNFINISHED = ("queued", "running", "finished")  # journal states whose job still needs its clip


def name_taken(name: str, scope: str) -> NameTaken:
    where = "among your voices" if scope == "me" else "on this server"
    return NameTaken(f"There is already a voice called “{name}” {where}; please choose another name.")


def _voice(row: Any) -> Voice:
    return Voice(
        id=row.id, name=row.name, key=row.key, owner=Member(row.platform, row.workspace_id, row.owner_id),
        scope=row.scope, clip_sha256=row.clip_sha256, transcript=row.transcript,
        consent=Consent(row.consent_statement, row.consent_by, row.consent_at), created_at=row.created_at,
        uses=row.uses, last_used_at=row.last_used_at,
    )


def _seen_by(member: Member) -> Any:
    """The voices `member` may use: their own "me" voices in this workspace, and the workspace's."""
    return (
        (voices.c.platform == member.platform) & (voices.c.workspace_id == member.workspace_id)
        & ((voices.c.scope == "server") | (voices.c.owner_id == member.user_id))
    )


OWN_FIRST = case((voices.c.scope == "me", 0), else_=1)


class SqlVoiceStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(self, voice: NewVoice) -> Voice:
        row = {
            "id": uuid.uuid4().hex, "platform": voice.owner.platform, "workspace_id": voice.owner.workspace_id,
            "owner_id": voice.owner.user_id, "scope": voice.scope, "name": voice.name, "key": voice.key,
            "clip_sha256": voice.clip_sha256, "transcript": voice.transcript,
            "consent_statement": voice.consent.statement, "consent_by": voice.consent.confirmed_by,
            "consent_at": voice.consent.confirmed_at, "created_at": datetime.now(UTC), "uses": 0,
        }
        async with self._db.transaction("saving a voice") as connection:
            try:
                await connection.execute(insert(voices).values(row))
            except IntegrityError:
                raise name_taken(voice.name, voice.scope) from None
            saved = (await connection.execute(select(voices).where(voices.c.id == row["id"]))).one()
        return _voice(saved)

    async def get(self, voice_id: str) -> Voice | None:
        async with self._db.transaction("reading a voice") as connection:
            row = (await connection.execute(select(voices).where(voices.c.id == voice_id))).first()
        return None if row is None else _voice(row)

    async def resolve(self, member: Member, key: str) -> Voice | None:
        query = select(voices).where(_seen_by(member), voices.c.key == key).order_by(OWN_FIRST).limit(1)
        async with self._db.transaction("finding a voice") as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else _voice(row)

    async def visible_to(self, member: Member, prefix: str = "", limit: int = 25) -> list[Voice]:
        query = (select(voices).where(_seen_by(member), voices.c.key.startswith(prefix, autoescape=True))
                 .order_by(OWN_FIRST, voices.c.key).limit(limit))
        async with self._db.transaction("listing voices") as connection:
            return [_voice(row) for row in await connection.execute(query)]

    async def owned_by(self, platform: str, user_id: str) -> list[Voice]:
        query = (select(voices).where(voices.c.platform == platform, voices.c.owner_id == user_id)
                 .order_by(voices.c.created_at, voices.c.id))
        async with self._db.transaction("listing a user's voices") as connection:
            return [_voice(row) for row in await connection.execute(query)]

    async def rename(self, voice_id: str, name: str, key: str) -> Voice:
        async with self._db.transaction("renaming a voice") as connection:
            found = (await connection.execute(select(voices.c.scope).where(voices.c.id == voice_id))).first()
            if found is None:
                raise LookupError(voice_id)
            try:
                await connection.execute(update(voices).where(voices.c.id == voice_id).values(name=name, key=key))
            except IntegrityError:
                raise name_taken(name, found.scope) from None
            row = (await connection.execute(select(voices).where(voices.c.id == voice_id))).one()
        return _voice(row)

    async def delete(self, voice_id: str) -> bool:
        async with self._db.transaction("deleting a voice") as connection:
            return (await connection.execute(delete(voices).where(voices.c.id == voice_id))).rowcount > 0

    async def count_owned(self, member: Member) -> int:
        query = select(func.count()).select_from(voices).where(
            voices.c.platform == member.platform, voices.c.workspace_id == member.workspace_id,
            voices.c.owner_id == member.user_id)
        async with self._db.transaction("counting voices") as connection:
            return int((await connection.execute(query)).scalar_one())

    async def mark_used(self, voice_id: str, at: datetime) -> None:
        async with self._db.transaction("counting a voice's use") as connection:
            await connection.execute(
                update(voices).where(voices.c.id == voice_id).values(uses=voices.c.uses + 1, last_used_at=at))

    async def references(self, clip_sha256: str) -> int:
        async with self._db.transaction("counting a clip's users") as connection:
            return await clip_references(connection, clip_sha256)


async def clip_references(connection: Any, clip_sha256: str) -> int:
    """Voices using the clip, plus journaled jobs that still need it (a restarted bot resumes them)."""
    in_voices = select(func.count()).select_from(voices).where(voices.c.clip_sha256 == clip_sha256)
    in_jobs = select(func.count()).select_from(journal).where(
        (journal.c.clip_sha256 == clip_sha256) & journal.c.state.in_(UNFINISHED))
    return int((await connection.execute(in_voices)).scalar_one() + (await connection.execute(in_jobs)).scalar_one())


class SqlBlockList:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def block(self, platform: str, workspace_id: str, user_id: str, *, by: str, reason: str = "") -> None:
        key = (blocks.c.platform == platform) & (blocks.c.workspace_id == workspace_id) & (blocks.c.user_id == user_id)
        values = {"blocked_by": by, "reason": reason, "blocked_at": datetime.now(UTC)}
        async with self._db.transaction("blocking a user") as connection:
            await self._db.lock(connection, f"block:{platform}:{workspace_id}:{user_id}")
            changed = await connection.execute(update(blocks).where(key).values(values))
            if changed.rowcount == 0:
                await connection.execute(insert(blocks).values(
                    platform=platform, workspace_id=workspace_id, user_id=user_id, **values))

    async def unblock(self, platform: str, workspace_id: str, user_id: str) -> bool:
        async with self._db.transaction("unblocking a user") as connection:
            gone = await connection.execute(delete(blocks).where(
                blocks.c.platform == platform, blocks.c.workspace_id == workspace_id, blocks.c.user_id == user_id))
            return gone.rowcount > 0

    async def is_blocked(self, member: Member) -> bool:
        query = select(blocks.c.user_id).where(
            blocks.c.platform == member.platform, blocks.c.workspace_id == member.workspace_id,
            blocks.c.user_id == member.user_id)
        async with self._db.transaction("checking a block") as connection:
            return (await connection.execute(query)).first() is not None
