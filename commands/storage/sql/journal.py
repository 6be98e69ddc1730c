"""The job journal in SQL (`commands.storage.journal`).

Every entry is leased to the process running its job (`commands.storage.sql.lease`): `accept` and `unfinished`
make this process its holder, the storage heartbeat renews what it holds, and `release` (a clean shutdown
suspending the job) leaves the entry without a holder. `unfinished` takes over only entries without a live
holder, in one statement that locks what it takes (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: every
transaction holds the write lock), so of processes starting together each entry goes to exactly one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, or_, select, update

from commands.storage.journal import JobState, JournalEntry
from commands.storage.sql.database import Database
from commands.storage.sql.lease import EXPIRED, Holder
from commands.storage.sql.tables import journal
from commands.storage.sql.voices import UNFINISHED

FIELDS = [field for field in JournalEntry.__dataclass_fields__]


def _entry(row: Any) -> JournalEntry:
    return JournalEntry(**{field: getattr(row, field) for field in FIELDS})


class SqlJobJournal:
    def __init__(self, database: Database, holder: Holder) -> None:
        self._db = database
        self._holder = holder

    async def accept(self, entry: JournalEntry) -> None:
        values = {field: getattr(entry, field) for field in FIELDS}
        lease = {"holder": self._holder.id, "renewed_at": self._holder.clock()}
        async with self._db.transaction("journaling a job") as connection:
            await connection.execute(insert(journal).values({**values, **lease}))

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
        """Take over the platform's unfinished entries that no live process holds: released ones, and those whose
        holder stopped renewing them for `STALE_S`. This process holds them from now on."""
        claimable = (select(journal.c.job_id)
                     .where(journal.c.platform == platform, journal.c.state.in_(UNFINISHED),
                            or_(journal.c.holder.is_(None), journal.c.renewed_at < self._holder.stale_before()))
                     .with_for_update(skip_locked=True))
        claim = (update(journal).where(journal.c.job_id.in_(claimable.scalar_subquery()))
                 .values(holder=self._holder.id, renewed_at=self._holder.clock()).returning(*journal.c))
        async with self._db.transaction("taking over the job journal") as connection:
            rows = (await connection.execute(claim)).all()
        return sorted((_entry(row) for row in rows), key=lambda entry: (entry.accepted_at, entry.job_id))

    async def release(self, job_ids: Sequence[str] | None = None) -> None:
        """This process no longer runs these jobs (None: all it holds): their entries are free to take over at
        once. Only its own: a job another process took over stays with that one."""
        held = journal.c.holder == self._holder.id
        where = held if job_ids is None else held & journal.c.job_id.in_(list(job_ids))
        async with self._db.transaction("releasing journaled jobs") as connection:
            await connection.execute(update(journal).where(where).values(holder=None, renewed_at=EXPIRED))

    async def renew(self) -> None:
        """The heartbeat: the entries this process holds stay its own."""
        async with self._db.transaction("renewing the journaled jobs") as connection:
            await connection.execute(update(journal).where(journal.c.holder == self._holder.id)
                                     .values(renewed_at=self._holder.clock()))

    async def forget(self, job_id: str) -> None:
        async with self._db.transaction("removing a journaled job") as connection:
            await connection.execute(delete(journal).where(journal.c.job_id == job_id))
