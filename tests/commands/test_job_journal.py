"""The job journal end to end through the real store: a "process" is a CloneService + queue + JobJournaling on
one data directory; a restart drains one and opens the next on the same database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from commands.clone import CloneService
from commands.errors import BotRestarting, JobSuspended
from commands.job_journal import JobJournaling, JobNotResumed, JobOrigin, journaled_as, taking_over
from commands.jobs import JobStatus
from commands.settings import CommandSettings
from commands.storage import Storage
from commands.storage.errors import StorageUnavailable
from commands.storage.sql import open_storage
from commands.storage.sql.lease import STALE_S
from commands.storage.voices import Member
from commands.timing import timing_fields
from commands.voice_library import VoiceLibrary
from tests.clips import sine_clip
from tests.fakes import FakeBackend
from tests.storage.records import left_over

ALICE = Member("discord", "g1", "111")
BOB = Member("discord", "g1", "222")
CLIP = sine_clip(3.0, 16_000)
ROUTE = {"channel_id": "42", "token": "secret-token"}


@dataclass
class Process:
    service: CloneService
    journal: JobJournaling
    backend: FakeBackend
    storage: Storage

    async def submit(self, member: Member = ALICE, text: str = "Hello there"):
        with journaled_as(JobOrigin(member, f"discord:{member.workspace_id}/42", ROUTE)):
            return await self.service.submit(member.key, f"discord:{member.workspace_id}/42", CLIP, "c.wav", text)

    async def deliver(self, job) -> None:
        await job.wait()
        async with job.delivering():
            pass
        await self.journal.flush()

    async def restart(self) -> None:
        await self.service.queue.drain(timeout=0.01, notify_timeout=1)


@pytest.fixture
async def open_process(tmp_path) -> AsyncIterator:
    opened: list[Process] = []

    async def make(*, hold: bool = False, clock: Callable[[], float] = time.time, **overrides: Any) -> Process:
        settings = CommandSettings(_env_file=None, **({"data_dir": tmp_path, "cooldown_s": 0.0, "max_jobs_per_user": 5,
                                                       "database_timeout_s": 10.0} | overrides))  # type: ignore
        storage = await open_storage(settings, clock=clock)
        backend = FakeBackend(hold=hold)
        service = CloneService(backend, settings)
        journal = JobJournaling(storage)
        service.use_journal(journal)
        process = Process(service, journal, backend, storage)
        opened.append(process)
        return process

    yield make
    for process in opened:
        if not process.service.queue.closed:
            await process.service.queue.drain(timeout=0)
        await process.storage.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request) -> str | None:
    """None (SQLite under the data directory) or a fresh database on the test PostgreSQL server."""
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None


async def test_a_queued_job_survives_a_restart_and_runs_in_the_next_process(open_process, database_url):
    first = await open_process(hold=True, max_concurrent_jobs=1, database_url=database_url)
    running = await first.submit(text="first")
    queued = await first.submit(text="second")
    await first.backend.next_call()  # the first job is in the backend; the second waits

    await first.restart()
    with pytest.raises(JobSuspended, match=f"job {queued.id} will continue when it is back"):
        await queued.wait()
    with pytest.raises(JobSuspended, match=f"job {running.id} will continue"):
        await running.wait()
    await first.storage.close()

    second = await open_process(database_url=database_url)
    entries = await second.journal.unfinished("discord")
    assert [(e.job_id, e.state, e.text, e.route["token"]) for e in entries] == [
        (running.id, "queued", "first", "secret-token"), (queued.id, "queued", "second", "secret-token")]
    jobs = [await second.journal.resume(second.service, entry) for entry in entries]
    assert [job.id for job in jobs] == [running.id, queued.id]  # same ids, no admission
    for job in jobs:
        await second.deliver(job)
        assert job.status is JobStatus.DONE
    assert [call.text for call in second.backend.calls] == ["first", "second"]
    assert second.backend.calls[0].reference == first.backend.calls[0].reference  # the same clip bytes
    assert await left_over(second.storage) == []
    assert await second.storage.voices.references(entries[0].clip_sha256) == 0
    with pytest.raises(LookupError):  # the one-off clip went with its last job
        await second.storage.clips.get(entries[0].clip_sha256)


async def test_a_result_finished_before_the_restart_is_delivered_after_it_without_the_backend(open_process,
                                                                                           database_url):
    first = await open_process(database_url=database_url)
    job = await first.submit()
    result = await job.wait()  # generated; the adapter had not delivered it yet
    await first.journal.flush()
    job.mark_failed(JobSuspended(f"The bot is restarting; job {job.id} will continue when it is back."))
    await first.restart()
    await first.storage.close()

    second = await open_process(database_url=database_url)
    [entry] = await second.journal.unfinished("discord")
    assert entry.state == "finished" and entry.result_sha256
    resumed = await second.journal.resume(second.service, entry)
    again = await resumed.wait()
    assert again.audio == result.audio and again.audio_seconds == pytest.approx(result.audio_seconds, abs=0.01)
    fields = dict(timing_fields(again, text="Hello there", language="English"))
    assert fields["Total"] == "n/a" and fields["Real-time factor"] == "n/a"  # not a made-up 0 s
    assert second.backend.calls == []
    await second.deliver(resumed)
    assert await left_over(second.storage) == []
    with pytest.raises(LookupError):
        await second.storage.clips.get(entry.result_sha256)


async def test_a_delivered_or_failed_job_leaves_nothing_in_the_journal(open_process):
    process = await open_process()
    delivered = await process.submit()
    await process.deliver(delivered)
    failed = await process.submit()
    await failed.wait()
    failed.mark_failed("the platform refused the upload")
    await process.journal.flush()
    assert await left_over(process.storage) == []


async def test_a_journal_that_fails_does_not_fail_the_job_which_then_fails_on_restart_as_before(
        open_process, monkeypatch):
    process = await open_process()

    async def database_down(entry) -> None:
        raise StorageUnavailable(detail="database is locked")

    monkeypatch.setattr(process.storage.journal, "accept", database_down)
    done = await process.submit()
    await process.deliver(done)
    assert done.status is JobStatus.DONE

    process.backend.hold = True
    waiting = await process.submit()
    await process.journal.flush()
    assert not process.journal.keeps(waiting)
    await process.restart()
    with pytest.raises(BotRestarting, match="submit it again") as failure:
        await waiting.wait()
    assert not isinstance(failure.value, JobSuspended)


async def test_jobs_older_than_the_bound_are_not_run_after_a_restart(open_process):
    first = await open_process(hold=True)
    job = await first.submit()
    await first.backend.next_call()
    await first.restart()
    await first.storage.close()

    second = await open_process()
    second.journal._now = lambda: datetime.now(UTC) + timedelta(hours=25)
    [entry] = await second.journal.unfinished("discord")
    with pytest.raises(JobNotResumed, match=f"Job {job.id} could not be finished.*more than 24 hours"):
        await second.journal.resume(second.service, entry)
    assert await left_over(second.storage) == [] and second.backend.calls == []


async def test_forget_me_removes_journaled_jobs_and_the_next_process_does_not_resurrect_them(open_process):
    first = await open_process(hold=True)
    library = VoiceLibrary(first.storage, first.service)
    alice_job = await first.submit(ALICE)
    bob_job = await first.submit(BOB)
    report = await library.forget_me(ALICE)
    assert report.jobs_cancelled == 1
    with pytest.raises(Exception, match="forget you"):
        await alice_job.wait()
    await first.restart()
    await library.aclose()
    await first.storage.close()

    second = await open_process()
    assert [entry.job_id for entry in await second.journal.unfinished("discord")] == [bob_job.id]


async def test_a_starting_process_takes_over_what_a_restart_suspended_never_what_a_live_sibling_runs(open_process):
    """Two processes on one database (Discord shards): one that starts beside a live one leaves its jobs alone;
    the jobs a clean shutdown suspended are handed over at once, without waiting for their lease to go stale."""
    shard = await open_process(hold=True)
    job = await shard.submit()
    await shard.backend.next_call()
    await shard.journal.flush()
    sibling = await open_process()
    assert await sibling.journal.unfinished("discord") == []  # running live in the shard: not run twice

    await shard.restart()  # suspended: the shard's storage is still open, its heartbeat still running
    with pytest.raises(JobSuspended):
        await job.wait()
    await shard.journal.flush()
    [entry] = await sibling.journal.unfinished("discord")
    assert entry.job_id == job.id and entry.state == "queued"
    assert await (await open_process()).journal.unfinished("discord") == []  # taken once


async def test_a_serving_bot_takes_over_the_jobs_of_a_process_that_died(open_process):
    """A crash leaves its jobs leased to the dead process: no starting process may take them yet. The bot that
    serves beside it (or replaced it at once) takes them over in a later round, once the lease is stale."""
    dead = await open_process(hold=True, clock=lambda: time.time() - 2 * STALE_S)  # last renewed long ago
    job = await dead.submit(text="left by a crash")
    await dead.backend.next_call()
    await dead.journal.flush()
    serving = await open_process()
    resumed: asyncio.Queue = asyncio.Queue()

    async def resume_jobs() -> None:
        for entry in await serving.journal.unfinished("discord"):
            resumed.put_nowait(await serving.journal.resume(serving.service, entry))

    async with taking_over(resume_jobs, every_s=0.01):
        again = await asyncio.wait_for(resumed.get(), timeout=10)
    assert again.id == job.id
    await serving.deliver(again)
    assert [call.text for call in serving.backend.calls] == ["left by a crash"]
    assert resumed.empty() and await left_over(serving.storage) == []
