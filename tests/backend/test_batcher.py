"""In-container batching on the real engine (tiny checkpoint, CPU): concurrent clones become one generation.

The engine's `clone_batch` is spied on, never faked (`record_batches`). Gather windows are wide (seconds) so
every concurrent request arrives before its batch starts however busy the machine is; nothing here asserts
how long anything took.
"""

from __future__ import annotations

import asyncio
import io

import pytest
import soundfile as sf

from backend.batcher import CloneBatcher
from backend.clients.local import LocalBackend
from backend.errors import BackendFailed, InvalidInput
from backend.schema import CloneRequest, CloneResult, Progress
from backend.settings import BackendSettings
from tests.backend import record_batches

pytestmark = pytest.mark.slow
WIDE = 1.0  # seconds: the gather window of every batcher here


def request(clip: bytes, text: str = "Hello there.", **overrides) -> CloneRequest:
    return CloneRequest(**(dict(reference=clip, text=text, language="English", max_new_tokens=6) | overrides))


def local_backend(engine, window_s: float = WIDE) -> LocalBackend:
    return LocalBackend(BackendSettings(_env_file=None, batch_window_s=window_s), engine=engine)


def texts(batches: list[list[CloneRequest]]) -> list[list[str]]:
    return [sorted(r.text for r in batch) for batch in batches]


def assert_wav_24k(result: CloneResult) -> None:
    samples, sample_rate = sf.read(io.BytesIO(result.audio))
    assert sample_rate == 24_000 and samples.size == result.frames * 1920 > 0


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


async def test_a_seeded_clone_runs_alone_and_sounds_as_unbatched(engine, clip, monkeypatch):
    batches = record_batches(monkeypatch)
    backend = local_backend(engine)
    seeded = request(clip, "Seeded.", seed=7)
    results = await asyncio.gather(*(backend.clone(item) for item in
                                     (request(clip, "A."), seeded, request(clip, "B."), request(clip, "C."))))

    assert sorted(texts(batches)) == [["A.", "B.", "C."], ["Seeded."]]
    assert [r.batch_size for r in results] == [3, 1, 3, 3]
    assert results[1].audio == engine.clone(seeded).audio


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
    assert isinstance(outcomes[1], InvalidInput) and outcomes[1].code == "corrupt_audio"
    for result in (outcomes[0], outcomes[2]):
        assert_wav_24k(result)
        assert result.batch_size == 1


async def test_batches_never_exceed_max_batch(engine, clip, monkeypatch):
    batches = record_batches(monkeypatch)
    batcher = CloneBatcher(engine.clone_batch, max_batch=4, validate=engine.validate, window_s=WIDE)
    results = await asyncio.gather(*(batcher.clone(request(clip, f"Line {n}.")) for n in range(6)))

    assert [len(batch) for batch in batches] == [4, 2]
    assert sorted(r.batch_size for r in results) == [2, 2, 4, 4, 4, 4]


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


async def test_local_aclose_waits_for_the_running_batch(engine, clip, monkeypatch):
    batches = record_batches(monkeypatch)
    backend = local_backend(engine, window_s=0.0)
    job = asyncio.create_task(backend.clone(request(clip, max_new_tokens=24)))
    while not batches and not job.done():  # the generation has started
        await asyncio.sleep(0.01)

    await backend.aclose()

    assert job.done()
    assert_wav_24k(job.result())
