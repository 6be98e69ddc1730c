"""Serving in front of the engine's continuous batch: every clone joins the running decode, and a misbehaving
engine call fails only its own request.

On the real engine (tiny checkpoint, CPU, marked slow; fast mode for batching, the stock `engine` elsewhere) the
engine's `clone_batch` is spied on, never faked (`record_batches`). When requests must meet in one decode, the
test holds the decode loop (`holding_the_loop`) until they are queued, or makes one request's progress wait until
another is queued, so nothing depends on how fast the machine is and nothing asserts how long anything took.
The engine's failure modes (hanging, raising a BaseException, answering with the wrong number of results) are
played by small `run` functions; `WATCHDOG` bounds every wait there, so a regression fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
WATCHDOG = 30.0  # seconds: far beyond any deadline here; reaching it means a caller was left hanging


def request(clip: bytes, text: str = "Hello there.", **overrides) -> CloneRequest:
    return CloneRequest(**(dict(reference=clip, text=text, language="English", max_new_tokens=6) | overrides))


def assert_wav_24k(result: CloneResult) -> None:
    samples, sample_rate = sf.read(io.BytesIO(result.audio))
    assert sample_rate == 24_000 and samples.size == result.frames * 1920 > 0


@pytest.fixture(scope="module")
def fast_engine(tiny_checkpoint):
    from backend.engine import Engine, EngineConfig

    instance = Engine(EngineConfig(model=str(tiny_checkpoint), variant="test", engine_mode="fast", fast_max_batch=4,
                                   progress_interval_s=0))
    instance.load()
    instance.tts.model.config.talker_config.codec_eos_token_id = 10**6  # every clip runs to its budget
    return instance


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WATCHDOG
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.005)


@contextmanager
def holding_the_loop(engine) -> Iterator[Callable[[int], None]]:
    """Keep the decode loop from taking requests in; yields `until_waiting(n)`, which returns once n requests
    wait for a slot. Leaving the block lets them all join at one frame boundary."""
    batch = engine._fast.batch
    with engine._fast.decoder._generating:
        yield lambda n: wait_until(lambda: batch.stats().waiting >= n)


@slow
async def test_concurrent_local_clones_decode_together(fast_engine, clip, monkeypatch):
    batches = record_batches(monkeypatch)
    backend = LocalBackend(BackendSettings(_env_file=None), engine=fast_engine)
    stages: dict[str, list[str]] = {}

    def on_progress(text: str):
        async def record(progress: Progress) -> None:
            stages.setdefault(text, []).append(progress.stage)

        return record

    budgets = {"One.": 4, "Two, a bit longer.": 6, "Three.": 8, "Four, the longest of them all.": 10}
    with holding_the_loop(fast_engine) as until_waiting:
        calls = [asyncio.create_task(backend.clone(request(clip, text, max_new_tokens=budget), on_progress(text)))
                 for text, budget in budgets.items()]
        await asyncio.to_thread(until_waiting, 4)
    results = await asyncio.wait_for(asyncio.gather(*calls), WATCHDOG)

    assert sorted(map(len, batches)) == [1, 1, 1, 1]  # one engine call per request: the engine batches
    assert {text: seen[:2] for text, seen in stages.items()} == {text: ["cloning", "generating"] for text in budgets}
    for result, budget in zip(results, budgets.values(), strict=True):
        assert_wav_24k(result)
        assert result.frames <= budget - 1  # each row leaves at its own budget
        assert result.batch_size == 4 and result.timings.queue_s > 0
    await backend.aclose()


@slow
async def test_a_short_request_joins_a_running_long_one_and_leaves_first(fast_engine, clip):
    """The long request's decode waits (in its progress reports) at frame 2 until the short one is queued, and at
    frame 12 until the short one is answered: it joined mid-generation and left long before the long one ends."""
    batcher = CloneBatcher.for_engine(fast_engine)
    batch = fast_engine._fast.batch
    long_reports: list[Progress] = []
    short_answered = threading.Event()

    def hold(progress: Progress) -> None:  # on the decode loop's thread
        long_reports.append(progress)
        if progress.frames == 2:
            wait_until(lambda: batch.stats().waiting >= 1)
        if progress.frames == 12:
            assert short_answered.wait(WATCHDOG)

    long = asyncio.create_task(batcher.clone(request(clip, "A long one.", max_new_tokens=40), hold))
    await asyncio.to_thread(wait_until, lambda: any(p.frames == 2 for p in long_reports))
    short = await asyncio.wait_for(batcher.clone(request(clip, "Short.", max_new_tokens=4)), WATCHDOG)
    short_answered.set()

    assert short.batch_size == 2 and short.frames == 3
    assert max(p.frames for p in long_reports) <= 12  # the long one was still decoding
    assert (await asyncio.wait_for(long, WATCHDOG)).frames == 39
    await batcher.aclose()


@slow
async def test_bad_input_fails_alone_and_never_reaches_the_engine(engine, clip, monkeypatch):
    batches = record_batches(monkeypatch)
    batcher = CloneBatcher.for_engine(engine)
    outcomes = await asyncio.gather(
        *(batcher.clone(item) for item in (request(clip, "One."), request(clip, "Two.", language="Klingon"))),
        return_exceptions=True,
    )

    assert [[r.text for r in batch] for batch in batches] == [["One."]]
    assert isinstance(outcomes[1], InvalidInput) and outcomes[1].code == "unknown_language"
    assert_wav_24k(outcomes[0])
    await batcher.aclose()


@slow
async def test_a_request_the_engine_refuses_fails_alone(engine, clip):
    """Without up-front validation a corrupt clip reaches the engine: its own error, the others' audio."""
    batcher = CloneBatcher(engine.clone_batch, max_calls=4)
    outcomes = await asyncio.gather(
        *(batcher.clone(item) for item in (request(clip, "One."), request(b"not audio at all", "Broken."),
                                           request(clip, "Two."))),
        return_exceptions=True,
    )

    assert isinstance(outcomes[1], InvalidInput) and outcomes[1].code == "not_audio"
    for result in (outcomes[0], outcomes[2]):
        assert_wav_24k(result)
    await batcher.aclose()


@slow
async def test_local_aclose_waits_for_the_running_clone(engine, clip, monkeypatch):
    from backend.engine import Engine

    calls: list[str] = []  # "started", then "returned": a spy on the real method
    original = Engine.clone_batch

    def spy(self, requests, **options):
        calls.append("started")
        try:
            return original(self, requests, **options)
        finally:
            calls.append("returned")

    monkeypatch.setattr(Engine, "clone_batch", spy)
    backend = LocalBackend(BackendSettings(_env_file=None), engine=engine)
    job = asyncio.create_task(backend.clone(request(clip, max_new_tokens=24)))
    while not calls and not job.done():  # the generation has started
        await asyncio.sleep(0.01)

    await backend.aclose()

    assert calls == ["started", "returned"]
    assert_wav_24k(await asyncio.wait_for(job, WATCHDOG))


# -- a misbehaving engine: nothing waits forever, the worker survives ------------------------------------
class Engine:
    """`run` stand-ins: answers valid results unless told to hang, raise or miscount, and records calls."""

    def __init__(self) -> None:
        self.unblock = threading.Event()  # a hanging call returns once the test is over
        self.calls: list[list[str]] = []
        self.misbehave: list[Callable[[list[CloneRequest]], list[CloneResult]]] = []  # one per coming call

    def __call__(self, requests: list[CloneRequest], *, on_progress=None, cancel=None) -> list[CloneResult]:
        self.calls.append([r.text for r in requests])
        self.cancel = cancel
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
        made.append(CloneBatcher(engine, **({"max_calls": 4} | options)))
        return made[-1]

    yield engine, batcher
    engine.unblock.set()
    for each in made:
        await asyncio.wait_for(each.aclose(), WATCHDOG)


async def clone_all(batcher: CloneBatcher, *texts: str) -> list[CloneResult | BaseException]:
    return await asyncio.wait_for(asyncio.gather(
        *(batcher.clone(CloneRequest(reference=b"clip", text=text)) for text in texts), return_exceptions=True),
        WATCHDOG)


async def test_a_hanging_engine_call_times_its_caller_out_asks_it_to_leave_and_shutdown_returns(fake_engine):
    """The watchdog: a call stuck in the engine fails its caller with BackendTimeout at its deadline and is told
    to give up (`cancel`); other requests are served meanwhile, and closing returns although the call never
    does."""
    engine, make = fake_engine
    engine.misbehave = [engine.hang]
    batcher = make(timeout_s=0.2)

    (stuck,) = await clone_all(batcher, "Stuck.")
    cancel = engine.cancel
    (served,) = await clone_all(batcher, "Next.")
    await asyncio.wait_for(batcher.aclose(), WATCHDOG)

    assert isinstance(stuck, BackendTimeout) and stuck.code == "batch_timeout"
    assert cancel.is_set() and isinstance(served, CloneResult)
    assert engine.calls == [["Stuck."], ["Next."]]
    with pytest.raises(BackendFailed, match="shutting down") as raised:
        await batcher.clone(CloneRequest(reference=b"clip", text="Late."))
    assert raised.value.code == "shutting_down"


async def test_aclose_finishes_accepted_clones(fake_engine):
    engine, make = fake_engine
    release = threading.Event()
    engine.misbehave = [lambda requests: (release.wait(WATCHDOG), [fake_result(1.0)])[1]]
    batcher = make()
    job = asyncio.create_task(clone_all(batcher, "Accepted."))
    while not engine.calls:
        await asyncio.sleep(0.01)

    closing = asyncio.create_task(batcher.aclose())
    await asyncio.sleep(0.05)
    assert not closing.done()  # waiting for the accepted clone
    release.set()
    await asyncio.wait_for(closing, WATCHDOG)
    assert isinstance((await job)[0], CloneResult)


@pytest.mark.parametrize("answer", [
    pytest.param(lambda requests: [], id="no results"),
    pytest.param(lambda requests: [fake_result(1.0)] * (len(requests) + 1), id="one result too many"),
    pytest.param(lambda requests: [None] * len(requests), id="not results"),
    pytest.param(lambda requests: None, id="no list"),
])
async def test_a_wrong_answer_fails_its_request_only(fake_engine, answer):
    engine, make = fake_engine
    engine.misbehave = [answer]
    batcher = make()

    (failed,) = await clone_all(batcher, "One.")
    (served,) = await clone_all(batcher, "Two.")

    assert isinstance(failed, BackendFailed) and failed.code == "bad_batch"
    assert isinstance(served, CloneResult)


@pytest.mark.parametrize("error", [RaisesBaseException("signal"), SystemExit(3), KeyboardInterrupt()],
                         ids=["custom BaseException", "SystemExit", "KeyboardInterrupt"])
async def test_a_base_exception_in_the_engine_fails_its_request_only(fake_engine, error):
    """Raised in a worker thread it can stop nothing but that call: its caller is told (engine_crashed) and the
    next request is served."""

    def crash(requests):
        raise error

    engine, make = fake_engine
    engine.misbehave = [crash]
    batcher = make()

    (failed,) = await clone_all(batcher, "One.")
    (served,) = await clone_all(batcher, "Two.")

    assert getattr(failed, "code", failed) == "engine_crashed"
    assert isinstance(served, CloneResult) and engine.calls == [["One."], ["Two."]]


async def test_progress_reaches_its_request_and_a_failing_sink_stops_nothing(fake_engine):
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

    assert all(isinstance(r, CloneResult) for r in results)
    assert seen == {text: [Progress(stage="generating", frames=3, frame_budget=10)] for text in seen}


async def test_the_local_backend_relays_every_stage_in_order_and_nothing_after_the_answer():
    """From the generation thread to the caller's loop: stages are never lost, frames of one stage coalesce
    while the callback is busy, and a report made after the answer is dropped."""
    reports = [Progress(stage="cloning", frame_budget=8), Progress(stage="generating", frame_budget=8),
               *(Progress(stage="generating", frames=n, frame_budget=8) for n in range(1, 9))]
    answer = threading.Event()
    sinks: list[Callable[[Progress], None]] = []

    def run_batch(requests, *, on_progress=None, cancel=None):
        for progress in reports:
            on_progress(progress)
        sinks.append(on_progress)
        answer.wait(WATCHDOG)
        return [fake_result(1.0) for _ in requests]

    engine = SimpleNamespace(config=SimpleNamespace(fast_max_batch=4), validate=lambda request: None,
                             clone_batch=run_batch)
    backend = LocalBackend(BackendSettings(_env_file=None), engine=engine)
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
