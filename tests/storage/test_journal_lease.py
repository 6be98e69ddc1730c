"""Several bot processes of one platform on one database (Discord shards, Slack replicas): a starting process
takes over the journaled jobs of a process that is gone or released them, never those a live sibling runs,
and each entry goes to exactly one of the processes that start together. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from commands.storage.sql import open_storage
from commands.storage.sql.lease import STALE_S
from tests.storage.records import journal_entry

JOBS = [f"JOB{index:02}" for index in range(12)]


@pytest.fixture
async def processes(database_settings, clock):
    """Open bot processes on one database: `await processes()` starts one more."""
    opened = []

    async def start():
        opened.append(await open_storage(database_settings, clock=clock))
        return opened[-1]

    yield start
    for storage in opened:
        await storage.close()


def ids(entries) -> list[str]:
    return [entry.job_id for entry in entries]


async def running(storage, job_ids=JOBS) -> None:
    """`storage`'s process accepted these jobs (oldest first) and runs them."""
    for minutes, job_id in enumerate(job_ids):
        await storage.journal.accept(journal_entry(job_id, minutes=minutes))


async def test_a_live_siblings_jobs_are_not_taken_over(processes, clock):
    shard = await processes()
    await running(shard)
    starting = await processes()
    assert await starting.journal.unfinished("discord") == []

    for _ in range(3):  # its heartbeat keeps them its own, however long they run
        clock.now += STALE_S - 1
        await shard.journal.renew()
        assert await starting.journal.unfinished("discord") == []


async def test_a_dead_holders_jobs_are_taken_over_once_stale(processes, clock):
    dead = await processes()
    await running(dead)
    clock.now += STALE_S / 2
    await dead.journal.renew()  # its last beat
    starting = await processes()
    clock.now += STALE_S - 1
    assert await starting.journal.unfinished("discord") == []  # it may only be slow: not yet

    clock.now += 2
    taken = await starting.journal.unfinished("discord")
    assert ids(taken) == JOBS  # oldest first
    assert taken[0] == journal_entry(JOBS[0])
    assert await starting.journal.unfinished("discord") == []  # taken once

    await dead.journal.renew()  # back from a network partition: it cannot renew what is no longer its own
    clock.now += STALE_S - 1
    await starting.journal.renew()
    assert await (await processes()).journal.unfinished("discord") == []


async def test_processes_starting_together_take_each_stale_job_exactly_once(processes, clock):
    await running(await processes())
    clock.now += STALE_S + 1  # its process died
    starting = [await processes() for _ in range(3)]

    claims = await asyncio.gather(*(storage.journal.unfinished("discord") for storage in starting))

    claimed = [job_id for claim in claims for job_id in ids(claim)]
    assert sorted(claimed) == JOBS
    for claim in claims:
        assert ids(claim) == sorted(ids(claim))  # each in order


async def test_jobs_suspended_by_a_clean_shutdown_are_taken_over_at_once(processes):
    shard = await processes()
    await running(shard, ["SUSPENDED", "STILL_RUNNING"])
    await shard.journal.release(["SUSPENDED"])  # `JobQueue.drain` suspended it
    starting = await processes()
    assert ids(await starting.journal.unfinished("discord")) == ["SUSPENDED"]

    await shard.close()  # whatever it still held is free too
    assert ids(await (await processes()).journal.unfinished("discord")) == ["STILL_RUNNING"]


async def test_a_released_job_another_process_took_over_stays_with_it(processes):
    first = await processes()
    await running(first, ["J1"])
    await first.journal.release()
    second = await processes()
    assert ids(await second.journal.unfinished("discord")) == ["J1"]
    await first.journal.release(["J1"])  # a late release of the old holder does not free the new one's job
    assert await (await processes()).journal.unfinished("discord") == []


async def test_the_storage_heartbeat_renews_the_journaled_jobs_a_process_holds(processes, clock, monkeypatch):
    from sqlalchemy import select

    from commands.storage.sql import lease
    from commands.storage.sql.tables import journal

    monkeypatch.setattr(lease, "HEARTBEAT_S", 0.01)
    shard = await processes()
    await running(shard, ["J1"])
    clock.now += STALE_S + 1  # the shard lives on: its heartbeat renews J1 at the new time

    async def renewed() -> None:
        while True:
            async with shard.journal._db.transaction("reading a lease") as connection:
                if (await connection.execute(select(journal.c.renewed_at))).scalar_one() == clock.now:
                    return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(renewed(), timeout=10)
    assert await (await processes()).journal.unfinished("discord") == []
