"""In-container batching: concurrent clones become one generation, and a misbehaving engine fails only its batch.

On the real engine (tiny checkpoint, CPU, marked slow) the engine's `clone_batch` is spied on, never faked
(`record_batches`). Gather windows are wide (seconds) so every concurrent request arrives before its batch
starts however busy the machine is; nothing here asserts how long anything took. The engine's failure modes
(hanging, raising a BaseException, answering with the wrong number of results) are played by small
`run_batch` functions; `WATCHDOG` bounds every wait there, so a regression fails instead of hanging the run.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from types import SimpleNamespace

import pytest
import soundfile as sf

from backend.batcher import CloneBatcher
from backend.clients.local import LocalBackend
from backend.errors import BackendFailed, BackendTimeout, InvalidInput
from backend.schema import CloneRequest, CloneResult, Progress
from backend.settings import BackendSettings
from tests.backend import record_batches
from tests.fakes import RaisesBaseException, fake_result

slow = pytest.mark.slow
WIDE = 1.0  # seconds: the gather window of every batcher on the real engine
WATCHDOG = 30.0  # seconds: far beyond any deadline here; reaching it means a caller was left hanging


def request(clip: bytes, text: str = "Hello there.", **overrides) -> CloneRequest:
    return CloneRequest(**(dict(reference=clip, text=text, language="English", max_new_tokens=6) | overrides))


def local_backend(engine, window_s: float = WIDE) -> LocalBackend:
    return LocalBackend(BackendSettings(_env_file=None, batch_window_s=window_s), engine=engine)


def texts(batches: list[list[CloneRequest]]) -> list[list[str]]:
    return [sorted(r.text for r in batch) for batch in batches]


def assert_wav_24k(result: CloneResult) -> None:
    samples, sample_rate = sf.read(io.BytesIO(result.audio))
    assert sample_rate == 24_000 and samples.size == result.frames * 1920 > 0


@slow
async def test_concurrent_local_clones_share_one_generation(engine, clip, monkeypatch):
    batches = record_batches(monkeypatch)
    backend = local_backend(engine)
    stages: dict[str, list[str]] = {}

    def on_progress(text: str):
        async def record(progress: Progress) -> None:
            stages.setdefault(text, []).append(progress.stage)

        return record

    budgets = {"One.": 4, "Two, a bit longer.": 6, "Three.": 8, "Four, the longest of them all.": 10}
    results = await asyncio.gather(*(backend.clone(request(clip, text, max_new_tokens=budget), on_progress(text))
                                     for text, budget in budgets.items()))

    assert texts(batches) == [sorted(budgets)]
    # the stock engine's stages reach every caller of the batch, in order (frames are the fast engine's)
    assert stages == {text: ["cloning", "generating"] for text in budgets}
    for result, budget in zip(results, budgets.values(), strict=True):
        assert_wav_24k(result)
        # Rows share the largest budget while generating; each comes back cut to its own (alone: budget - 1).
        assert result.frames <= budget - 1
        assert result.batch_size == 4 and result.timings.queue_s > 0


@slow
async def test_a_burst_still_being_validated_joins_one_batch(engine, clip, monkeypatch):
    """Clip checks spread a burst's arrivals over more than the window: the batch waits for those on their way
    in (the H100 serving run split 16 concurrent requests into batches of 6 and 10 before this)."""
    import time

    batches = record_batches(monkeypatch)
    delays = {"A.": 0.0, "B.": 0.1, "C.": 0.2, "D.": 0.3}  # seconds of validation, each far over the window

    def slow_validate(item: CloneRequest) -> None:
        time.sleep(delays[item.text])
        engine.validate(item)

    batcher = CloneBatcher(engine.clone_batch, max_batch=16, validate=slow_validate, window_s=0.001,
                           max_wait_s=60.0)
    results = await asyncio.gather(*(batcher.clone(request(clip, text)) for text in delays))

    assert texts(batches) == [sorted(delays)]
    assert [r.batch_size for r in results] == [4] * 4
    await batcher.aclose()


@slow
async def test_a_seeded_clone_runs_alone_and_sounds_as_unbatched(engine, clip, monkeypatch):
    batches = record_batches(monkeypatch)
    backend = local_backend(engine)
    seeded = request(clip, "Seeded.", seed=7)
    results = await asyncio.gather(*(backend.clone(item) for item in
                                     (request(clip, "A."), seeded, request(clip, "B."), request(clip, "C."))))

    assert sorted(texts(batches)) == [["A.", "B.", "C."], ["Seeded."]]
    assert [r.batch_size for r in results] == [3, 1, 3, 3]
    assert results[1].audio == engine.clone(seeded).audio


@slow
async def test_bad_input_fails_alone_and_never_joins_a_batch(engine, clip, monkeypatch):
    batches = record_batches(monkeypatch)
    backend = local_backend(engine)
    outcomes = await asyncio.gather(
        *(backend.clone(item) for item in (request(clip, "One."), request(clip, "Two.", language="Klingon"),
                                           request(clip, "Three."))),
        return_exceptions=True,
    )

    assert texts(batches) == [["One.", "Three."]]
    assert isinstance(outcomes[1], InvalidInput) and outcomes[1].code == "unknown_language"
    assert [r.batch_size for r in (outcomes[0], outcomes[2])] == [2, 2]


@slow
async def test_a_failing_batch_is_retried_one_by_one(engine, clip, monkeypatch):
    """Without up-front validation a corrupt clip reaches the batch; the retry gives each request its own answer."""
    batches = record_batches(monkeypatch)
    batcher = CloneBatcher(engine.clone_batch, max_batch=4, window_s=WIDE)
    outcomes = await asyncio.gather(
        *(batcher.clone(item) for item in (request(clip, "One."), request(b"not audio at all", "Broken."),
                                           request(clip, "Two."))),
        return_exceptions=True,
    )

    assert [len(batch) for batch in batches] == [3, 1, 1, 1]
    assert isinstance(outcomes[1], InvalidInput) and outcomes[1].code == "not_audio"
    for result in (outcomes[0], outcomes[2]):
        assert_wav_24k(result)
        assert result.batch_size == 1


@slow
async def test_batches_never_exceed_max_batch(engine, clip, monkeypatch):
    batches = record_batches(monkeypatch)
    batcher = CloneBatcher(engine.clone_batch, max_batch=4, validate=engine.validate, window_s=WIDE)
    results = await asyncio.gather(*(batcher.clone(request(clip, f"Line {n}.")) for n in range(6)))

    assert [len(batch) for batch in batches] == [4, 2]
    assert sorted(r.batch_size for r in results) == [2, 2, 4, 4, 4, 4]


@slow
async def test_aclose_finishes_accepted_clones_and_refuses_new_ones(engine, clip, monkeypatch):
    batches = record_batches(monkeypatch)
    batcher = CloneBatcher(engine.clone_batch, max_batch=4, window_s=60.0)  # only closing starts this batch
    jobs = [asyncio.create_task(batcher.clone(request(clip, text))) for text in ("One.", "Two.", "Three.")]
    await asyncio.sleep(0)  # each task queues its request

    await batcher.aclose()

    assert texts(batches) == [["One.", "Three.", "Two."]]
    assert all(job.done() and job.result().batch_size == 3 for job in jobs)
    with pytest.raises(BackendFailed, match="shutting down") as raised:
        await batcher.clone(request(clip))
    assert raised.value.code == "shutting_down"


@slow
async def test_local_aclose_waits_for_the_running_batch(engine, clip, monkeypatch):
    batches = record_batches(monkeypatch)
    backend = local_backend(engine, window_s=0.0)
    job = asyncio.create_task(backend.clone(request(clip, max_new_tokens=24)))
    while not batches and not job.done():  # the generation has started
        await asyncio.sleep(0.01)

    await backend.aclose()

    assert job.done()
    assert_wav_24k(job.result())


# -- a misbehaving engine: nothing waits forever, the worker survives ------------------------------------
class Engine:
    """`run_batch` stand-ins: answers valid results unless told to hang, raise or miscount, and records calls."""

    def __init__(self) -> None:
        self.unblock = threading.Event()  # a hanging call returns once the test is over
        self.calls: list[list[str]] = []
        self.misbehave: list[Callable[[list[CloneRequest]], list[CloneResult]]] = []  # one per coming call

    def __call__(self, requests: list[CloneRequest], *, on_progress=None) -> list[CloneResult]:
        self.calls.append([r.text for r in requests])
        if self.misbehave:
            return self.misbehave.pop(0)(requests)
        if on_progress is not None:
            on_progress(Progress(stage="generating", frames=3, frame_budget=10))
        return [fake_result(1.0) for _ in requests]

    def hang(self, requests):
        self.unblock.wait()
        return [fake_result(1.0) for _ in requests]


@pytest.fixture
async def fake_engine():
    engine = Engine()
    made: list[CloneBatcher] = []

    def batcher(**options) -> CloneBatcher:
        made.append(CloneBatcher(engine, **({"max_batch": 4, "window_s": 0.05} | options)))
        return made[-1]

    yield engine, batcher
    engine.unblock.set()
    for each in made:
        await asyncio.wait_for(each.aclose(), WATCHDOG)


async def clone_all(batcher: CloneBatcher, *texts: str) -> list[CloneResult | BaseException]:
    return await asyncio.wait_for(asyncio.gather(
        *(batcher.clone(CloneRequest(reference=b"clip", text=text)) for text in texts), return_exceptions=True),
        WATCHDOG)


async def test_a_hanging_engine_call_times_its_callers_out_and_shutdown_returns(fake_engine):
    """The watchdog: a batch stuck in the engine fails every caller with BackendTimeout at its deadline, the
    batches behind it too, and closing the batcher returns although the engine never does."""
    engine, make = fake_engine
    engine.misbehave = [engine.hang]
    batcher = make(batch_timeout_s=0.2, window_s=WIDE)

    stuck = await clone_all(batcher, "One.", "Two.")
    behind = await clone_all(batcher, "Three.")  # waits for the stuck generation up to its own deadline
    closing = asyncio.create_task(clone_all(batcher, "Four."))
    await asyncio.sleep(0)  # queued (in its gather window) when the batcher closes
    await asyncio.wait_for(batcher.aclose(), WATCHDOG)

    assert all(isinstance(error, BackendTimeout) and error.code == "batch_timeout" for error in stuck + behind)
    assert engine.calls == [["One.", "Two."]]  # one generation thread at a time: the stuck one
    (refused,) = await closing
    assert isinstance(refused, BackendFailed) and refused.code == "shutting_down"


async def test_the_engine_recovers_after_a_call_that_overran_its_deadline(fake_engine):
    engine, make = fake_engine
    engine.misbehave = [engine.hang]
    batcher = make(batch_timeout_s=0.2)
    (timed_out,) = await clone_all(batcher, "Slow.")
    engine.unblock.set()

    (result,) = await clone_all(batcher, "Next.")

    assert isinstance(timed_out, BackendTimeout)
    assert isinstance(result, CloneResult) and engine.calls == [["Slow."], ["Next."]]


@pytest.mark.parametrize("answer", [
    pytest.param(lambda requests: [], id="no results"),
    pytest.param(lambda requests: [fake_result(1.0)] * (len(requests) + 1), id="one result too many"),
    pytest.param(lambda requests: [None] * len(requests), id="not results"),
    pytest.param(lambda requests: None, id="no list"),
])
async def test_a_wrong_answer_fails_its_batch_only(fake_engine, answer):
    """The batch is retried one by one (a request may have caused it); answers still wrong fail as bad_batch,
    and the next batch is served."""
    engine, make = fake_engine
    engine.misbehave = [answer] * 3  # the batch of two, then each of its requests alone
    batcher = make()

    failed = await clone_all(batcher, "One.", "Two.")
    (served,) = await clone_all(batcher, "Three.")

    assert [error.code for error in failed] == ["bad_batch", "bad_batch"]
    assert isinstance(served, CloneResult)


@pytest.mark.parametrize("error", [RaisesBaseException("signal"), SystemExit(3), KeyboardInterrupt()],
                         ids=["custom BaseException", "SystemExit", "KeyboardInterrupt"])
async def test_a_base_exception_in_the_engine_fails_its_batch_only(fake_engine, error):
    """Raised in the generation thread it can stop nothing but that thread: the batch's callers are told
    (engine_crashed, not retried) and the worker serves the next batch."""

    def crash(requests):
        raise error

    engine, make = fake_engine
    engine.misbehave = [crash]
    batcher = make()

    failed = await clone_all(batcher, "One.", "Two.")
    (served,) = await clone_all(batcher, "Three.")

    assert [getattr(e, "code", e) for e in failed] == ["engine_crashed", "engine_crashed"]
    assert isinstance(served, CloneResult) and engine.calls == [["One.", "Two."], ["Three."]]


async def test_progress_reaches_every_request_of_the_batch_and_a_failing_sink_stops_nothing(fake_engine):
    engine, make = fake_engine
    batcher = make()
    seen: dict[str, list[Progress]] = {"One.": [], "Two.": []}

    def broken(progress: Progress) -> None:
        raise RuntimeError("a sink that fails")

    results = await asyncio.wait_for(asyncio.gather(
        batcher.clone(CloneRequest(reference=b"clip", text="One."), seen["One."].append),
        batcher.clone(CloneRequest(reference=b"clip", text="Broken."), broken),
        batcher.clone(CloneRequest(reference=b"clip", text="Two."), seen["Two."].append),
    ), WATCHDOG)

    assert engine.calls == [["One.", "Broken.", "Two."]] and all(isinstance(r, CloneResult) for r in results)
    assert seen == {text: [Progress(stage="generating", frames=3, frame_budget=10)] for text in seen}


async def test_the_local_backend_relays_every_stage_in_order_and_nothing_after_the_answer():
    """From the generation thread to the caller's loop: stages are never lost, frames of one stage coalesce
    while the callback is busy, and a report made after the answer is dropped."""
    reports = [Progress(stage="cloning", frame_budget=8), Progress(stage="generating", frame_budget=8),
               *(Progress(stage="generating", frames=n, frame_budget=8) for n in range(1, 9))]
    answer = threading.Event()
    sinks: list[Callable[[Progress], None]] = []

    def run_batch(requests, *, on_progress=None):
        for progress in reports:
            on_progress(progress)
        sinks.append(on_progress)
        answer.wait(WATCHDOG)
        return [fake_result(1.0) for _ in requests]

    engine = SimpleNamespace(config=SimpleNamespace(fast_max_batch=4), validate=lambda request: None,
                             clone_batch=run_batch)
    backend = LocalBackend(BackendSettings(_env_file=None, batch_window_s=0.0), engine=engine)
    seen: list[Progress] = []
    busy, all_in = asyncio.Event(), asyncio.Event()

    async def on_progress(progress: Progress) -> None:
        seen.append(progress)
        await busy.wait()  # slower than the engine: reports pile up meanwhile
        if progress == reports[-1]:
            all_in.set()

    call = asyncio.create_task(backend.clone(CloneRequest(reference=b"clip", text="Hi."), on_progress))
    while not sinks:  # every report made
        await asyncio.sleep(0.01)
    busy.set()
    await asyncio.wait_for(all_in.wait(), WATCHDOG)
    answer.set()
    await asyncio.wait_for(call, WATCHDOG)
    sinks[0](Progress(stage="generating", frames=8, frame_budget=8))  # too late: the clone has its answer
    await asyncio.sleep(0.05)
    await backend.aclose()

    assert [p.stage for p in seen] == ["cloning", "generating"]  # the frames coalesced into the latest
    assert seen[-1] == reports[-1] and len(seen) == 2
