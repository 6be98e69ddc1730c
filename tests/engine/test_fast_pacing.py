"""The decode loop stays a bounded number of frames ahead of the GPU, and reads nothing before its frames ran."""

from __future__ import annotations

import pytest

from backend.engine.fast.pacing import FramePacer
from tests.engine.fast_fixtures import TEXTS, fast, prompts, tts  # noqa: F401  (fixtures)


class FakeFence:
    """A CUDA event stand-in: the log says what happened to which fence, in order."""

    def __init__(self, log: list[tuple[str, int]]) -> None:
        self.log = log
        self.number = sum(1 for what, _ in log if what == "record")

    def record(self) -> None:
        self.log.append(("record", self.number))

    def synchronize(self) -> None:
        self.log.append(("wait", self.number))


def test_the_pacer_waits_for_the_oldest_frame_beyond_its_depth():
    log: list[tuple[str, int]] = []
    pacer = FramePacer(depth=2, make_fence=lambda: FakeFence(log))
    for _ in range(5):
        pacer.queued()
        assert pacer.in_flight <= 2
    assert log == [("record", 0), ("record", 1), ("record", 2), ("wait", 0), ("record", 3), ("wait", 1),
                   ("record", 4), ("wait", 2)]
    pacer.drain()
    assert log[-1] == ("wait", 4) and pacer.in_flight == 0
    pacer.drain()  # nothing in flight: nothing to wait for
    assert log[-1] == ("wait", 4)


def test_without_events_the_pacer_does_nothing():
    pacer = FramePacer(depth=1)
    for _ in range(3):
        pacer.queued()
    pacer.drain()
    assert pacer.in_flight == 0


def test_the_pacer_needs_a_frame_in_flight():
    with pytest.raises(ValueError, match="at least one frame"):
        FramePacer(depth=0)


@pytest.mark.slow
def test_the_loop_reads_codes_only_after_its_frames_ran_and_never_queues_past_the_depth(fast, prompts,  # noqa: F811
                                                                                         monkeypatch):
    batch, log = fast.batch, []
    depths, reads = [], []
    monkeypatch.setattr(batch.pacer, "make_fence", lambda: FakeFence(log))
    take = batch._take

    def checked_take(job, codes, upto):
        reads.append(batch.pacer.in_flight)
        return take(job, codes, upto)

    def counted_fence():
        depths.append(batch.pacer.in_flight)
        return FakeFence(log)

    monkeypatch.setattr(batch, "_take", checked_take)
    monkeypatch.setattr(batch.pacer, "make_fence", counted_fence)
    chunks: list = []
    job = fast.submit(TEXTS[2], "english", prompts[0], chunks=(2, 6), on_chunk=chunks.append,
                      do_sample=False, subtalker_dosample=False, max_new_tokens=12)
    codes = job.future.result(timeout=300)
    assert sum(len(chunk) for chunk in chunks) == len(codes) == 11
    assert reads and set(reads) == {0}  # every chunk handed on after the frames before it had run
    assert depths and max(depths) <= batch.pacer.depth  # never more frames queued than the depth
    assert sum(1 for what, _ in log if what == "record") == job.done
