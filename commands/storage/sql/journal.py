"""The job journal in SQL (`commands.storage.journal`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update

from commands.storage.journal import JobState, JournalEntry
from commands.storage.sql.database import Database
from commands.storage.sql.tables import journal
from commands.storage.sql.voices import UNFINISHED

FIELDS = [field for field in JournalEntry.__dataclass_fields__]


def _entry(row: Any) -> JournalEntry:
    return JournalEntry(**{field: getattr(row, field) for field in FIELDS})


class SqlJobJournal:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def accept(self, entry: JournalEntry) -> None:
        async with self._db.transaction("journaling a job") as connection:
            await connection.execute(insert(journal).values({field: getattr(entry, field) for field in FIELDS}))

    async def update(self, job_id: str, state: JobState, *, result_sha256: str | None = None,
                     error: str | None = None) -> None:
        values: dict[str, object] = {"state": state}
        if result_sha256 is not None:
            values["result_sha256"] = result_sha256
        if error is not None:
            values["error"] = error
        async with self._db.transaction("updating the job journal") as connection:
            await connection.execute(update(journal).where(journal.c.job_id == job_id).values(values))

    async def unfinished(self, platform: str) -> list[JournalEntry]:
        query = (select(journal).where(journal.c.platform == platform, journal.c.state.in_(UNFINISHED))
                 .order_by(journal.c.accepted_at, journal.c.job_id))
        async with self._db.transaction("reading the job journal") as connection:
            return [_entry(row) for row in await connection.execute(query)]

    async def forget(self, job_id: str) -> None:
        async with self._db.transaction("removing a journaled job") as connection:
            await connection.execute(delete(journal).where(journal.c.job_id == job_id))
