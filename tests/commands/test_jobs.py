"""The job queue: FIFO positions, admission limits, failures, progress callbacks, statistics and draining."""

from __future__ import annotations

import asyncio
import re

import pytest
from structlog.testing import capture_logs

from backend.errors import BackendFailed, BackendTimeout, BackendUnavailable, InvalidInput, VoicebotError
from backend.schema import CloneRequest, Progress
from commands.errors import BotRestarting, Cooldown, QueueFull, TooManyJobs, UnexpectedJobError
from commands.admission import LocalLimits
from commands.jobs import Job, JobQueue, JobStatus, p50_p95
from tests.fakes import FakeBackend, RaisesBaseException

ORDER = list(JobStatus)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """A progress callback that remembers (status, position) each time it runs."""

    def __init__(self) -> None:
        self.events: list[tuple[JobStatus, int | None]] = []

    def __call__(self, job: Job) -> None:
        self.events.append((job.status, job.position))

    @property
    def positions(self) -> list[int | None]:
        return [position for status, position in self.events if status is JobStatus.QUEUED]

    @property
    def statuses(self) -> list[JobStatus]:
        return [status for status, _ in self.events]


def work_on(backend: FakeBackend, queue: JobQueue):
    """The work function a CloneService would pass: one backend call reporting its stages to the queue."""

    async def work(job: Job):
        async def on_progress(progress):
            queue.progress(job, progress)

        return await backend.clone(CloneRequest(reference=b"clip", text=job.text), on_progress)

    return work


async def submit(queue: JobQueue, backend: FakeBackend, user: str = "u1", **kwargs) -> Job:
    return await queue.submit(work_on(backend, queue), user_id=user, place="test:place", text=f"text of {user}",
                              **kwargs)


async def deliver(job: Job, queue: JobQueue | None = None) -> None:
    """What an adapter does with a result; with `queue`, the upload lasts until its progress call has run."""
    await job.wait()
    async with job.delivering():
        if queue is not None:
            await queue.flush()


def assert_forward(statuses: list[JobStatus]) -> None:
    indices = [ORDER.index(status) for status in statuses]
    assert indices == sorted(indices), statuses


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make_queue(clock):
    """JobQueue factory on the test clock; every queue is drained at teardown so no job task outlives its loop."""
    queues: list[JobQueue] = []

    def make(max_concurrent: int = 1, **options) -> JobQueue:
        options = {"max_per_user": 5, "cooldown_s": 0, "clock": clock, "wall_clock": clock,
                   "progress_interval_s": 0} | options
        queues.append(JobQueue(max_concurrent, **options))
        return queues[-1]

    yield make
    for queue in queues:
        await queue.drain(timeout=0)


# -- positions ---------------------------------------------------------------------------------------------
async def test_positions_reported_then_move_up_with_one_slot(make_queue):
    queue = make_queue(1)
    backend = FakeBackend(hold=True)
    recorders = [Recorder() for _ in range(4)]
    jobs = [await submit(queue, backend, f"u{i}", on_progress=recorders[i]) for i in range(4)]
    running = await backend.next_call()
    await queue.flush()

    assert [queue.position(job) for job in jobs] == [None, 1, 2, 3]
    assert jobs[0].status is JobStatus.GENERATING
    assert [r.positions for r in recorders[1:]] == [[1], [2], [3]]
    assert queue.queued == 3 and queue.running == 1

    for index in range(4):
        running.release()
        await deliver(jobs[index], queue)
        if index < 3:
            running = await backend.next_call()
        await queue.flush()
        assert [job.position for job in jobs[index + 2:]] == list(range(1, 3 - index))

    assert [r.positions for r in recorders] == [[], [1], [2, 1], [3, 2, 1]]
    for recorder in recorders:
        assert_forward(recorder.statuses)
        assert recorder.statuses[-1] is JobStatus.DONE
        assert JobStatus.UPLOADING in recorder.statuses
    assert [job.status for job in jobs] == [JobStatus.DONE] * 4
    assert queue.stats().done == 4


async def test_two_slots_start_two_jobs_and_keep_fifo_order(make_queue):
    queue = make_queue(2)
    backend = FakeBackend(hold=True)
    jobs = [await submit(queue, backend, f"u{i}") for i in range(4)]
    first, second = await backend.next_call(), await backend.next_call()
    assert [first.request.text, second.request.text] == ["text of u0", "text of u1"]
    assert [job.position for job in jobs] == [None, None, 1, 2]

    second.release()  # the second slot frees first: the head of the queue takes it
    await jobs[1].wait()
    third = await backend.next_call()
    assert third.request.text == "text of u2"
    assert jobs[3].position == 1
    for call in (first, third):
        call.release()
    (await backend.next_call()).release()
    await asyncio.gather(*(job.wait() for job in jobs))


async def test_a_queued_job_that_fails_moves_the_ones_behind_up(make_queue):
    queue = make_queue(1)
    backend = FakeBackend(hold=True)
    jobs = [await submit(queue, backend, f"u{i}") for i in range(4)]
    await backend.next_call()
    jobs[1].mark_failed("withdrawn by the user.")
    assert jobs[1].status is JobStatus.FAILED
    assert [job.position for job in jobs] == [None, None, 1, 2]
    with pytest.raises(Exception, match=rf"Job {jobs[1].id} failed: withdrawn by the user\."):
        await jobs[1].wait()


async def test_describe_and_lookup(make_queue):
    queue = make_queue(1)
    backend = FakeBackend(hold=True)
    a, b = await submit(queue, backend, "u1"), await submit(queue, backend, "u2")
    await backend.next_call()
    assert b.describe() == f"Job {b.id}: queued, position 1 of 1"
    assert a.describe() == f"Job {a.id}: generating speech…"
    assert queue.get(b.id.lower()) is b
    assert queue.jobs_of("u2") == [b]
    assert queue.get("NOSUCH") is None


async def test_job_ids_are_short_unique_and_readable(make_queue):
    queue = make_queue(1, max_queue=500, max_per_user=500)
    backend = FakeBackend(hold=True)
    ids = {(await submit(queue, backend, "u1")).id for _ in range(300)}
    assert len(ids) == 300
    assert all(re.fullmatch(r"[A-HJ-NP-Z2-9]{6}", job_id) for job_id in ids)


# -- admission ---------------------------------------------------------------------------------------------
async def test_cooldown_counts_down_on_the_injected_clock(make_queue, clock):
    queue = make_queue(2, cooldown_s=10)
    backend = FakeBackend()
    await submit(queue, backend, "u1")

    with pytest.raises(Cooldown) as refused:
        await submit(queue, backend, "u1")
    assert refused.value.seconds_left == pytest.approx(10)
    assert refused.value.code == "cooldown"

    clock.advance(4.25)
    with pytest.raises(Cooldown, match="in 6 s") as refused:
        await submit(queue, backend, "u1")
    assert refused.value.seconds_left == pytest.approx(5.75)
    await submit(queue, backend, "u2")  # cooldown is per user

    clock.advance(5.75)
    await submit(queue, backend, "u1")  # exactly cooldown_s later
    with pytest.raises(Cooldown):
        await submit(queue, backend, "u1")
    await submit(queue, backend, "u1", is_admin=True)  # admins skip it


async def test_refused_submissions_do_not_start_a_cooldown(make_queue):
    queue = make_queue(1, max_queue=0, cooldown_s=10)
    backend = FakeBackend(hold=True)
    job = await submit(queue, backend, "u1")
    with pytest.raises(QueueFull):
        await submit(queue, backend, "u2")
    (await backend.next_call()).release()
    await job.wait()
    await submit(queue, backend, "u2")  # accepted: the refusal left no cooldown behind


async def test_per_user_limit_counts_queued_and_running_jobs_only(make_queue):
    queue = make_queue(1, max_per_user=2)
    backend = FakeBackend(hold=True)
    first, second = await submit(queue, backend, "u1"), await submit(queue, backend, "u1")
    with pytest.raises(TooManyJobs, match="You already have 2 voice clone jobs queued or running") as refused:
        await submit(queue, backend, "u1")
    assert refused.value.code == "too_many_jobs"
    assert queue.in_flight("u1") == 2
    await submit(queue, backend, "u2")  # another user is not affected
    await submit(queue, backend, "u1", is_admin=True)  # admins are not limited

    (await backend.next_call()).release()
    await first.wait()
    first.mark_uploading()  # uploading does not hold a backend slot nor count against the user
    assert queue.in_flight("u1") == 2  # second (queued) and the admin job
    await backend.next_call()
    second.mark_failed("withdrawn.")  # the adapter gives up: its backend call is cancelled
    await submit(queue, backend, "u1")
    assert (await backend.next_call()).request.text == "text of u2"  # the cancelled call freed its slot


async def test_queue_full_counts_waiting_jobs_when_all_slots_are_busy(make_queue):
    queue = make_queue(1, max_queue=2)
    backend = FakeBackend(hold=True)
    for user in ("u1", "u2", "u3"):
        await submit(queue, backend, user)
    with pytest.raises(QueueFull, match=r"The queue is full \(2 jobs waiting\)") as refused:
        await submit(queue, backend, "u4")
    assert refused.value.code == "queue_full"
    with pytest.raises(QueueFull):
        await submit(queue, backend, "u4", is_admin=True)
    assert queue.queued == 2 and queue.running == 1


# -- failures ----------------------------------------------------------------------------------------------
async def test_backend_error_fails_the_job_with_its_id_and_the_next_job_runs(make_queue):
    queue = make_queue(1)
    backend = FakeBackend(hold=True)
    recorder = Recorder()
    failing, following = await submit(queue, backend, "u1", on_progress=recorder), await submit(queue, backend, "u2")
    (await backend.next_call()).fail(BackendUnavailable("The Modal app is not deployed."))

    with pytest.raises(BackendUnavailable) as failed:
        await failing.wait()
    assert failed.value.message == f"Job {failing.id} failed: The Modal app is not deployed."
    assert failed.value.code == "backend_unavailable"
    assert failed.value.job_id == failing.id
    assert failing.status is JobStatus.FAILED and failing.error is failed.value
    await queue.flush()
    assert recorder.statuses[-1] is JobStatus.FAILED

    (await backend.next_call()).release()
    await deliver(following)
    stats = queue.stats()
    assert (stats.done, stats.failed) == (1, 1)


async def test_unexpected_exception_is_logged_and_reported_generically(make_queue):
    queue = make_queue(1)
    backend = FakeBackend(error=RuntimeError("token=hunter2 leaked in a stack trace"))
    with capture_logs() as logs:
        job = await submit(queue, backend, "u1")
        with pytest.raises(UnexpectedJobError) as failed:
            await job.wait()
    assert failed.value.message == f"Job {job.id} failed: unexpected error; the admins have the log."
    assert "hunter2" not in failed.value.message
    crash = next(entry for entry in logs if entry["event"] == "job.crashed")
    assert crash["job_id"] == job.id and crash["log_level"] == "error" and crash["exc_info"]


async def test_progress_callback_errors_never_reach_the_job(make_queue):
    queue = make_queue(1)

    async def broken(job):
        raise ValueError("message edit failed")

    with capture_logs() as logs:
        job = await submit(queue, FakeBackend(), "u1", on_progress=broken)
        await deliver(job)
        await queue.flush()
    assert job.status is JobStatus.DONE
    assert any(entry["event"] == "job.progress_callback_failed" for entry in logs)


async def test_slow_async_callback_is_never_reentered_and_sees_the_final_state(make_queue):
    queue = make_queue(1)
    gate = asyncio.Event()
    seen: list[JobStatus] = []
    active = 0

    async def slow(job):
        nonlocal active
        active += 1
        assert active == 1
        seen.append(job.status)
        await gate.wait()
        active -= 1

    job = await submit(queue, FakeBackend(), "u1", on_progress=slow)
    await deliver(job)  # several changes while the first callback is still blocked
    gate.set()
    await queue.flush()
    assert seen[-1] is JobStatus.DONE
    assert len(seen) == 2  # coalesced: the first state, then the latest


async def test_marking_without_a_result_is_a_programming_error(make_queue):
    queue = make_queue(1)
    job = await submit(queue, FakeBackend(hold=True), "u1")
    with pytest.raises(RuntimeError, match="await job.wait"):
        job.mark_done()


async def test_delivery_failure_marks_the_job_failed(make_queue):
    queue = make_queue(1)
    job = await submit(queue, FakeBackend(), "u1")
    await job.wait()
    with capture_logs(), pytest.raises(OSError):
        async with job.delivering():
            assert job.status is JobStatus.UPLOADING
            raise OSError("413 Payload Too Large")
    assert job.status is JobStatus.FAILED
    assert job.error.message == f"Job {job.id} failed: the audio could not be delivered; the admins have the log."
    assert queue.stats().failed == 1


# -- statistics --------------------------------------------------------------------------------------------
def test_p50_p95():
    assert p50_p95([]) == (None, None)
    assert p50_p95([3.0]) == (3.0, 3.0)
    assert p50_p95(range(1, 101)) == pytest.approx((50.5, 95.05))
    assert p50_p95([1.0, float("inf"), 3.0]) == pytest.approx((2.0, 2.9))


async def test_stats_give_percentiles_over_a_bounded_window(make_queue, clock):
    queue = make_queue(2, window=20)
    backend = FakeBackend(audio_seconds=2.0, total_s=0.9)
    clock.advance(100)
    for seconds in [1000.0] * 5 + [float(n) for n in range(1, 21)]:  # the first five fall out of the window
        job = await submit(queue, backend, "u1")
        await job.wait()
        clock.advance(seconds)
        job.mark_uploading()
        job.mark_done()

    stats = queue.stats()
    assert (stats.done, stats.failed, stats.queued, stats.running) == (25, 0, 0, 0)
    assert stats.total_p50_s == pytest.approx(10.5)
    assert stats.total_p95_s == pytest.approx(19.05)
    assert stats.rtf_p50 == pytest.approx(0.45) and stats.rtf_p95 == pytest.approx(0.45)
    assert stats.wait_p50_s == 0.0
    assert stats.uptime_s == pytest.approx(100 + 5000 + 210)
    assert (stats.max_concurrent, stats.max_queue) == (2, 50)


# -- shutdown ----------------------------------------------------------------------------------------------
async def test_drain_lets_running_jobs_finish_and_fails_queued_ones(make_queue):
    queue = make_queue(1)
    backend = FakeBackend(hold=True)
    recorders = [Recorder() for _ in range(3)]
    running, *queued = [await submit(queue, backend, f"u{i}", on_progress=recorders[i]) for i in range(3)]
    call = await backend.next_call()

    draining = asyncio.create_task(queue.drain(timeout=60))
    for job in queued:
        with pytest.raises(BotRestarting, match=rf"Job {job.id} was not started: the bot is restarting"):
            await job.wait()
    with pytest.raises(BotRestarting):
        await submit(queue, backend, "u9")
    assert not draining.done() and running.status is JobStatus.GENERATING

    call.release()
    await deliver(running)
    report = await draining
    assert (report.finished, report.cancelled_queued, report.interrupted) == (1, 2, 0)
    assert running.status is JobStatus.DONE
    assert [r.statuses[-1] for r in recorders] == [JobStatus.DONE, JobStatus.FAILED, JobStatus.FAILED]
    assert len(backend.calls) == 1


async def test_drain_timeout_interrupts_backend_calls_and_uploads(make_queue):
    queue = make_queue(2)
    backend = FakeBackend(hold=True)
    stuck, uploading = await submit(queue, backend, "u1"), await submit(queue, backend, "u2")
    await backend.next_call()
    (await backend.next_call()).release()
    await uploading.wait()
    uploading.mark_uploading()  # the adapter never reports back

    report = await queue.drain(timeout=0.01)
    assert (report.finished, report.cancelled_queued, report.interrupted) == (0, 0, 2)
    for job in (stuck, uploading):
        assert job.status is JobStatus.FAILED
        assert job.error.code == "restarting"
        assert job.error.message.startswith(f"Job {job.id} was interrupted: the bot is restarting")
    with pytest.raises(BotRestarting):
        await stuck.wait()
    uploading.mark_done()  # too late: stays FAILED
    assert uploading.status is JobStatus.FAILED
    assert queue.running == 0


# -- the queue as its users see it ---------------------------------------------------------------------------
async def test_waiting_jobs_are_told_the_current_length_of_the_queue(make_queue):
    """"position 1 of 1" must not stay on screen while more jobs line up behind it."""
    queue = make_queue(1)
    backend = FakeBackend(hold=True)
    lines: list[str] = []
    await submit(queue, backend, "u0")
    waiting = await submit(queue, backend, "u1", on_progress=lambda job: lines.append(job.describe()))
    await queue.flush()
    assert lines == [f"Job {waiting.id}: queued, position 1 of 1"]

    for user in ("u2", "u3"):
        await submit(queue, backend, user)
        await queue.flush()

    assert lines[-1] == f"Job {waiting.id}: queued, position 1 of 3" and len(lines) == 3


async def test_the_progress_interval_holds_back_queue_length_and_frames_but_never_stages(make_queue):
    """Each callback run is a chat message edit: a new queue length or frame count waits for the interval
    (the latest state arriving at its end), a new status or place goes out at once."""
    queue = make_queue(1, progress_interval_s=3600)
    backend = FakeBackend(hold=True)
    running, waiting = Recorder(), Recorder()
    first = await submit(queue, backend, "u0", on_progress=running)
    second = await submit(queue, backend, "u1", on_progress=waiting)
    call = await backend.next_call()
    await queue.flush()
    calls_so_far = len(running.events), len(waiting.events)

    await submit(queue, backend, "u2")  # the second's queue length changes
    queue.progress(first, Progress(stage="generating", frames=10, frame_budget=100))  # frames only
    await queue.flush()
    assert (len(running.events), len(waiting.events)) == calls_so_far
    assert first.progress.frames == 10  # kept for the next line shown

    call.release()
    await deliver(first, queue)
    await queue.flush()
    assert running.statuses[-1] is JobStatus.DONE and waiting.statuses[-1] is JobStatus.GENERATING
    assert second.describe() == f"Job {second.id}: generating speech…"


async def test_a_held_back_update_arrives_at_the_end_of_the_interval(make_queue):
    queue = make_queue(1, progress_interval_s=0.05)
    backend = FakeBackend(hold=True)
    lines: list[str] = []
    arrived = asyncio.Event()

    def show(job: Job) -> None:
        lines.append(job.describe())
        if "of 2" in lines[-1]:
            arrived.set()

    await submit(queue, backend, "u0")
    waiting = await submit(queue, backend, "u1", on_progress=show)
    await queue.flush()
    await submit(queue, backend, "u2")
    await asyncio.wait_for(arrived.wait(), 30)
    assert lines == [f"Job {waiting.id}: queued, position 1 of 1", f"Job {waiting.id}: queued, position 1 of 2"]


# -- outcomes: every one frees the slot; only the user's own failures keep the cooldown -------------------
@pytest.mark.parametrize("error, keeps_cooldown", [
    (BackendUnavailable("The voice backend is unavailable; try again later."), False),
    (BackendTimeout("the backend did not finish within 600 s."), False),
    (BackendFailed("The voice backend sent back unusable audio.", code="bad_audio"), False),
    (RuntimeError("a bug"), False),
    (InvalidInput("The reference clip holds no speech.", code="no_speech"), True),
])
async def test_only_a_failure_of_the_users_own_input_keeps_the_cooldown(make_queue, error, keeps_cooldown):
    queue = make_queue(1, cooldown_s=10)
    with capture_logs():
        job = await submit(queue, FakeBackend(error=error), "u1")
        with pytest.raises(VoicebotError):
            await job.wait()

    if keeps_cooldown:
        with pytest.raises(Cooldown):
            await submit(queue, FakeBackend(), "u1")
    else:
        await submit(queue, FakeBackend(), "u1")


async def test_a_delivery_failure_gives_the_cooldown_back(make_queue):
    queue = make_queue(1, cooldown_s=10)
    job = await submit(queue, FakeBackend(), "u1")
    await job.wait()
    with pytest.raises(VoicebotError):
        async with job.delivering():
            raise VoicebotError("the upload was refused by the platform.", code="upload_failed")
    await submit(queue, FakeBackend(), "u1")


async def test_a_refund_never_undoes_a_later_jobs_cooldown(make_queue, clock):
    queue = make_queue(2, cooldown_s=10)
    backend = FakeBackend(hold=True)
    first = await submit(queue, backend, "u1")
    clock.advance(10)
    await submit(queue, backend, "u1")  # starts the cooldown anew
    (await backend.next_call()).fail(BackendUnavailable("down"))
    with pytest.raises(BackendUnavailable):
        await first.wait()
    with pytest.raises(Cooldown):
        await submit(queue, backend, "u1")


@pytest.mark.parametrize("outcome", ["returns None", "raises a BaseException"])
async def test_work_that_misbehaves_fails_its_job_and_frees_the_slot(make_queue, outcome):
    queue = make_queue(1)

    async def work(job: Job):
        if outcome == "returns None":
            return None
        raise RaisesBaseException("from a library")

    with capture_logs() as logs:
        broken = await queue.submit(work, user_id="u1", place="test:place")
        following = await submit(queue, FakeBackend(), "u2")
        with pytest.raises(UnexpectedJobError):
            await asyncio.wait_for(broken.wait(), 30)
        await asyncio.wait_for(deliver(following), 30)
    assert following.status is JobStatus.DONE and queue.running == 0
    assert any(entry["event"] == "job.crashed" for entry in logs)


# -- limits shared by several processes (one database, two queues) ---------------------------------------------
@pytest.fixture
async def two_processes(database_settings, clock):
    """Two bot processes on one database: each its own storage (engine) and its own queue."""
    from commands.storage.sql import open_storage

    storages = [await open_storage(database_settings, clock=clock) for _ in range(2)]
    queues = [JobQueue(2, max_per_user=2, cooldown_s=10, clock=clock, wall_clock=clock, progress_interval_s=0,
                       limits=storage.limits) for storage in storages]
    yield queues
    for queue in queues:
        await queue.drain(timeout=0)
    for storage in storages:
        await storage.close()


async def test_a_user_cannot_double_the_allowance_through_a_second_process(two_processes, clock):
    first, second = two_processes
    backend = FakeBackend(hold=True)
    await submit(first, backend, "discord:1")
    with pytest.raises(Cooldown):
        await second.check_admission("discord:1")
    with pytest.raises(Cooldown):
        await submit(second, backend, "discord:1")
    clock.advance(10)
    held = await submit(second, backend, "discord:1")
    clock.advance(10)
    with pytest.raises(TooManyJobs, match="You already have 2"):
        await submit(first, backend, "discord:1")
    (await backend.next_call()).release()
    (await backend.next_call()).release()
    await held.wait()  # the second process released its job: the first one admits again
    await submit(first, backend, "discord:1")


async def test_a_failure_that_is_not_the_users_gives_the_cooldown_back_everywhere(two_processes, clock):
    first, second = two_processes
    with capture_logs():
        job = await submit(first, FakeBackend(error=BackendUnavailable("down")), "discord:1")
        with pytest.raises(BackendUnavailable):
            await job.wait()
        await first.admission.flush()
    await submit(second, FakeBackend(), "discord:1")


async def test_limits_that_cannot_be_reached_refuse_the_job_and_queue_nothing(make_queue):
    from commands.storage.errors import StorageUnavailable

    class DownLimits(LocalLimits):
        async def start(self, *args, **kwargs):
            raise StorageUnavailable(detail="admitting a job failed on SQLite file x: OperationalError: locked")

    queue = make_queue(1, limits=DownLimits())
    with pytest.raises(StorageUnavailable, match="nothing was changed"):
        await submit(queue, FakeBackend(), "u1")
    assert queue.queued == queue.running == 0 and queue.stats().queued == 0


async def test_a_submission_cancelled_while_the_limits_answer_leaves_nothing_counted(make_queue):
    entered = asyncio.Event()

    class SlowLimits(LocalLimits):
        async def start(self, *args, **kwargs):
            await super().start(*args, **kwargs)  # recorded, then the answer is slow to come back
            entered.set()
            await asyncio.Event().wait()

    limits = SlowLimits()
    queue = make_queue(1, limits=limits, max_per_user=1)
    pending = asyncio.ensure_future(submit(queue, FakeBackend(), "u1"))
    await entered.wait()
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    await queue.admission.flush()
    assert await limits.in_flight("u1") == 0 and queue.queued == 0
