"""The shared limits in SQL (`commands.storage.limits`): one `job_starts` row per admitted job, written in the
same transaction as the check, under a per-user lock, so two processes admitting jobs of one user at once
cannot both slip under the limit.

A row counts for the cooldown from its start until it is refunded or the cooldown is over, and as in flight
until the queue releases it. A row is leased to its process (`commands.storage.sql.lease`): rows of a process
that stopped renewing them (it crashed, or lost its database for minutes) stop counting after `STALE_S`, so a
killed bot cannot leave its users locked out.
"""

from __future__ import annotations

from sqlalchemy import and_, delete, func, insert, not_, or_, select, update

from commands.errors import Cooldown, TooManyJobs
from commands.storage.sql.database import Database
from commands.storage.sql.lease import STALE_S, Holder
from commands.storage.sql.tables import job_starts

FORGET_AFTER_S = 24 * 3600.0  # released starts older than this are deleted (no cooldown is that long)
rows = job_starts.c


def _live(now: float) -> object:
    return and_(rows.in_flight, rows.renewed_at >= now - STALE_S)


class SqlLimits:
    """`SharedLimits` for every process on one database; the rows this process starts are leased to `holder`."""

    def __init__(self, database: Database, holder: Holder) -> None:
        self._db = database
        self._clock = holder.clock
        self.holder = holder.id
        self._held: set[str] = set()  # job ids this process started and has not released: what `renew` renews

    async def last_start(self, user_key: str) -> float | None:
        async with self._db.transaction("reading a cooldown") as connection:
            return (await connection.execute(
                select(func.max(rows.started_at)).where(rows.user_key == user_key))).scalar_one()

    async def start(self, user_key: str, job_id: str, at: float, *, cooldown_s: float, max_in_flight: int) -> None:
        async with self._db.transaction("admitting a job") as connection:
            await self._db.lock(connection, f"limits:{user_key}")
            await connection.execute(delete(job_starts).where(rows.user_key == user_key, or_(
                and_(not_(rows.in_flight), rows.started_at <= at - cooldown_s),
                and_(rows.in_flight, rows.renewed_at < at - STALE_S))))
            last = (await connection.execute(
                select(func.max(rows.started_at)).where(rows.user_key == user_key))).scalar_one()
            if last is not None and cooldown_s > 0 and at - last < cooldown_s:
                raise Cooldown.after(cooldown_s - (at - last))
            count = (await connection.execute(
                select(func.count()).select_from(job_starts).where(rows.user_key == user_key, _live(at)))).scalar_one()
            if count >= max_in_flight:
                raise TooManyJobs.at_limit(count, max_in_flight)
            await connection.execute(insert(job_starts).values(
                user_key=user_key, job_id=job_id, started_at=at, in_flight=True, holder=self.holder, renewed_at=at))
        self._held.add(job_id)

    async def finish(self, user_key: str, job_id: str, *, refund: bool) -> None:
        this = (rows.user_key == user_key) & (rows.job_id == job_id)
        self._held.discard(job_id)  # if the write below fails, the row stops counting after STALE_S
        async with self._db.transaction("releasing a job") as connection:
            if refund:
                await connection.execute(delete(job_starts).where(this))
            else:
                await connection.execute(update(job_starts).where(this).values(in_flight=False))

    async def in_flight(self, user_key: str) -> int:
        async with self._db.transaction("counting jobs") as connection:
            return int((await connection.execute(select(func.count()).select_from(job_starts).where(
                rows.user_key == user_key, _live(self._clock())))).scalar_one())

    async def renew(self) -> None:
        """Keep this process's jobs counted; delete what no longer counts for anyone."""
        now = self._clock()
        async with self._db.transaction("renewing the jobs in flight") as connection:
            if self._held:
                await connection.execute(update(job_starts).where(
                    rows.holder == self.holder, rows.job_id.in_(sorted(self._held))).values(renewed_at=now))
            await self._db.lock(connection, "limits:prune")
            await connection.execute(delete(job_starts).where(or_(
                and_(not_(rows.in_flight), rows.started_at < now - FORGET_AFTER_S),
                and_(rows.in_flight, rows.renewed_at < now - STALE_S))))
