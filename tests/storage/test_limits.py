"""The shared limits: one contract for the in-memory `LocalLimits` and the SQL store on SQLite and
PostgreSQL; then what only the database does: several processes counting against one limit, and the jobs of
a process that died no longer counting."""

from __future__ import annotations

import asyncio

import pytest

from commands.admission import UNLIMITED, LocalLimits
from commands.errors import Cooldown, TooManyJobs
from commands.storage.sql import open_storage
from commands.storage.sql.limits import STALE_S


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def limits(request, tmp_path, clock):
    if request.param == "memory":
        yield LocalLimits(clock)
        return
    settings = request.getfixturevalue("database_settings_" + request.param)
    storage = await open_storage(settings, clock=clock)
    yield storage.limits
    await storage.close()


@pytest.fixture
def database_settings_sqlite(tmp_path):
    from commands.settings import CommandSettings

    return CommandSettings(_env_file=None, data_dir=tmp_path, database_timeout_s=10)


@pytest.fixture
def database_settings_postgresql(tmp_path, postgres_url):
    from commands.settings import CommandSettings

    return CommandSettings(_env_file=None, data_dir=tmp_path, database_url=postgres_url, database_timeout_s=10)


async def start(limits, job_id: str, at: float, *, user: str = "discord:1", cooldown_s: float = 10.0,
                max_in_flight: int = 2) -> None:
    await limits.start(user, job_id, at, cooldown_s=cooldown_s, max_in_flight=max_in_flight)


# -- the contract ------------------------------------------------------------------------------------------
async def test_the_cooldown_runs_from_the_last_start(limits, clock):
    now = clock.now
    assert await limits.last_start("discord:1") is None
    await start(limits, "A", now)
    assert await limits.last_start("discord:1") == now
    with pytest.raises(Cooldown, match="in 6 s") as refused:
        await start(limits, "B", now + 4)
    assert refused.value.seconds_left == pytest.approx(6)
    await start(limits, "C", now + 1, user="discord:2")  # per user
    await start(limits, "B", now + 10)  # exactly the cooldown later
    assert await limits.last_start("discord:1") == now + 10


async def test_jobs_in_flight_are_limited_until_released(limits, clock):
    now = clock.now
    await start(limits, "A", now, cooldown_s=0)
    await start(limits, "B", now, cooldown_s=0)
    assert await limits.in_flight("discord:1") == 2
    with pytest.raises(TooManyJobs, match="You already have 2 voice clone jobs queued or running"):
        await start(limits, "C", now, cooldown_s=0)
    await start(limits, "ADMIN", now, cooldown_s=0, max_in_flight=UNLIMITED)  # an admin's job is only recorded
    await limits.finish("discord:1", "A", refund=False)
    await limits.finish("discord:1", "ADMIN", refund=False)
    assert await limits.in_flight("discord:1") == 1
    await start(limits, "C", now, cooldown_s=0)


async def test_a_refund_gives_the_cooldown_back_but_never_a_later_jobs(limits, clock):
    now = clock.now
    await start(limits, "A", now)
    await limits.finish("discord:1", "A", refund=False)
    await limits.finish("discord:1", "A", refund=True)  # the delivery failed after the backend call
    await start(limits, "B", now + 1)
    await start(limits, "C", now + 11)
    await limits.finish("discord:1", "B", refund=True)
    with pytest.raises(Cooldown):
        await start(limits, "D", now + 12)  # C's cooldown holds
    await limits.finish("discord:1", "C", refund=True)
    await start(limits, "D", now + 12)
    await limits.finish("discord:1", "nope", refund=True)  # unknown jobs are fine


# -- only the database ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_processes_racing_for_one_user_get_exactly_the_limit(request, kind, clock):
    settings = request.getfixturevalue(f"database_settings_{kind}")
    processes = [await open_storage(settings, clock=clock) for _ in range(3)]
    try:
        attempts = [start(storage.limits, f"J{index}{n}", clock.now, cooldown_s=0, max_in_flight=2)
                    for index, storage in enumerate(processes) for n in range(3)]
        outcomes = await asyncio.gather(*attempts, return_exceptions=True)
        assert sum(outcome is None for outcome in outcomes) == 2
        assert all(isinstance(o, TooManyJobs) for o in outcomes if o is not None)
        assert all([await storage.limits.in_flight("discord:1") == 2 for storage in processes])
    finally:
        for storage in processes:
            await storage.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_the_jobs_of_a_process_that_died_stop_counting(request, kind, clock):
    settings = request.getfixturevalue(f"database_settings_{kind}")
    alive, dead = await open_storage(settings, clock=clock), await open_storage(settings, clock=clock)
    try:
        await start(alive.limits, "ALIVE", clock.now, user="discord:1", cooldown_s=0, max_in_flight=1)
        await start(dead.limits, "DEAD", clock.now, user="discord:2", cooldown_s=0, max_in_flight=1)
        clock.now += STALE_S - 1
        await alive.limits.renew()  # the heartbeat of the living process; the other one crashed
        clock.now += 2
        assert await alive.limits.in_flight("discord:1") == 1
        assert await alive.limits.in_flight("discord:2") == 0  # not locked out by a dead process
        with pytest.raises(TooManyJobs):
            await start(alive.limits, "AGAIN", clock.now, user="discord:1", cooldown_s=0, max_in_flight=1)
        await start(alive.limits, "NEW", clock.now, user="discord:2", cooldown_s=0, max_in_flight=1)
    finally:
        await alive.close()
        await dead.close()
