"""The engine reports its progress: stages from every path, frames against the budget from the fast decode loop."""

from __future__ import annotations

import pytest

from backend.engine.progress import ProgressReporter
from backend.schema import CloneRequest, Progress
from tests.clips import sine_clip
from tests.engine.fast_fixtures import TEXTS, fast, prompts, tts  # noqa: F401  (fixtures)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_frames_pass_at_most_once_per_interval_and_stages_always():
    clock, seen = Clock(), []
    reporter = ProgressReporter(seen.append, frame_budget=100, interval_s=0.5, clock=clock)
    reporter.stage("generating")
    for frame in range(1, 31):  # 30 frames, 1/16 s apart (exact in binary)
        clock.now += 0.0625
        reporter.frames(frame)

    assert [(p.stage, p.frames) for p in seen] == [("generating", 0), ("generating", 8), ("generating", 16),
                                                   ("generating", 24)]
    assert all(p.frame_budget == 100 for p in seen)


def test_without_a_sink_or_a_budget_nothing_but_stages_is_reported():
    ProgressReporter(None, frame_budget=10, interval_s=0).frames(3)  # no sink: a no-op
    seen = []
    reporter = ProgressReporter(seen.append, frame_budget=0, interval_s=0)
    reporter.stage("cloning")
    assert seen == [Progress(stage="cloning")] and seen[0].fraction is None


@pytest.mark.slow
def test_the_fast_decode_loop_counts_every_frame(fast, prompts):  # noqa: F811
    """EOS suppressed: the budget of 9 tokens is 8 frames, each reported as it is done."""
    done: list[int] = []
    fast.generate_codes(TEXTS[0], "english", [prompts[1]], do_sample=False, subtalker_dosample=False,
                        max_new_tokens=9, on_frame=done.append)
    assert done == list(range(1, 9))


@pytest.fixture(scope="module")
def fast_engine(tiny_checkpoint):
    from backend.engine import Engine, EngineConfig

    instance = Engine(EngineConfig(model=str(tiny_checkpoint), variant="test", engine_mode="fast", fast_max_batch=2,
                                   progress_interval_s=0))
    instance.load()
    return instance


@pytest.mark.slow
def test_the_fast_engine_reports_the_frames_of_all_its_rows_against_one_budget(fast_engine):
    """Three requests in a batch of at most 2 rows (budgets 10, 8 and 6 tokens: 9 + 7 + 5 frames): the third
    takes the first slot that frees; the count is every row's frames together and only goes up."""
    seen: list[Progress] = []
    requests = [CloneRequest(reference=sine_clip(), text=text, max_new_tokens=budget)
                for text, budget in (("Hello there.", 10), ("A second sentence.", 8), ("Third.", 6))]
    fast_engine.clone_batch(requests, on_progress=seen.append)

    assert [p.stage for p in seen[:2]] == ["cloning", "generating"] and seen[1].frames == 0
    assert {p.frame_budget for p in seen} == {21}
    frames = [p.frames for p in seen[2:]]
    assert frames and all(p.stage == "generating" for p in seen[2:])
    assert frames == sorted(set(frames)) and frames[-1] <= 21


@pytest.mark.slow
def test_the_stock_engine_reports_its_stages(engine):
    seen: list[Progress] = []
    engine.clone_batch([CloneRequest(reference=sine_clip(), text="Stages only.", max_new_tokens=4)],
                       on_progress=seen.append)
    assert seen == [Progress(stage="cloning"), Progress(stage="generating")]
