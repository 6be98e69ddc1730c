"""Which graphs a generation uses while others are still being captured, on the CPU.

The CPU has no CUDA graphs, so compiling and recording are replaced by stand-ins: recording a shape stores a
"graph" whose replay runs that shape's eager frame (what the real graph replays) and counts its replays; a
compile can be held on an event, as a slow background compilation would be. Everything else (the plan, the
locks, the background thread, prefill and the decode loop) is the real decoder on the tiny checkpoint.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch

from backend.engine.fast import FastTTS
from tests.engine.fast_fixtures import TEXTS, prompts, tts  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow
GREEDY = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=9)


class Stand_ins:  # noqa: N801 - reads as a noun in the tests
    """Compile and record for a decoder whose `use_graphs` is forced on, recording which shapes ran how."""

    def __init__(self, decoder) -> None:
        self.decoder = decoder
        self.compiled: list = []
        self.replays: dict = {}
        self.hold: dict = {}  # shape -> Event its compile waits for
        self.compiling = threading.Event()
        decoder.use_graphs = True
        decoder._compile = self.compile
        decoder._record = self.record

    def compile(self, shape) -> None:
        self.compiling.set()
        if shape in self.hold:
            assert self.hold[shape].wait(timeout=60)
        self.compiled.append(shape)
        self.decoder._ready.add(shape)

    def record(self, shape) -> None:
        def replay() -> None:
            self.replays[shape] = self.replays.get(shape, 0) + 1
            self.decoder._frame(self.decoder.buffers, *shape, compiled=False)

        self.decoder._graphs[shape] = SimpleNamespace(replay=replay)


@pytest.fixture
def fast(tts):  # noqa: F811
    return FastTTS(tts, max_batch=4, max_len=512, use_graphs=False)


def codes(fast, texts, prompt):
    return fast.generate_codes(texts, ["english"] * len(texts), [prompt] * len(texts), **GREEDY)


def test_a_request_for_a_shape_being_compiled_does_not_wait_for_it(fast, prompts):  # noqa: F811
    """The background is stuck compiling batch 2; a batch of two runs meanwhile (eager frames, no graph of its
    size yet) and gives the codes the same request gives once everything is captured."""
    stand_ins = Stand_ins(fast.decoder)
    fast.decoder.capture((1, 256))
    stand_ins.hold[(2, 256)] = threading.Event()
    thread = fast.decoder.capture_in_background([(2, 256), (4, 256)])
    assert stand_ins.compiling.wait(timeout=60)

    during = codes(fast, TEXTS[:2], prompts[0])
    assert thread.is_alive() and (2, 256) not in fast.decoder._graphs  # still compiling: nobody waited for it
    assert stand_ins.replays == {}

    stand_ins.hold[(2, 256)].set()
    thread.join(timeout=60)
    after = codes(fast, TEXTS[:2], prompts[0])
    assert stand_ins.replays == {(2, 256): 8}
    assert all(torch.equal(a, b) for a, b in zip(during, after, strict=True))


def test_while_capturing_a_request_replays_the_smallest_captured_graph_that_holds_it(fast, prompts):  # noqa: F811
    stand_ins = Stand_ins(fast.decoder)
    for shape in [(1, 256), (4, 256), (4, 512)]:
        fast.decoder.capture(shape)
    stand_ins.hold[(2, 256)] = threading.Event()
    thread = fast.decoder.capture_in_background([(2, 256)])
    assert stand_ins.compiling.wait(timeout=60)
    codes(fast, TEXTS[:2], prompts[0])
    assert stand_ins.replays == {(4, 256): 8}  # batch 2 in the batch-4 graph, not the longer one
    stand_ins.hold[(2, 256)].set()
    thread.join(timeout=60)


def test_without_a_background_capture_a_request_captures_its_shape(fast, prompts):  # noqa: F811
    stand_ins = Stand_ins(fast.decoder)
    fast.decoder.capture((1, 256))
    codes(fast, TEXTS[:3], prompts[0])
    assert stand_ins.compiled == [(1, 256), (4, 256)] and stand_ins.replays == {(4, 256): 8}


def test_a_shape_whose_capture_failed_runs_eagerly_and_is_not_retried(fast, prompts):  # noqa: F811
    stand_ins = Stand_ins(fast.decoder)

    def broken(shape):
        raise torch.cuda.OutOfMemoryError("no room for this graph")

    fast.decoder._compile = broken
    fast.decoder.capture_in_background([(2, 256)]).join(timeout=60)
    fast.decoder._compile = stand_ins.compile
    codes(fast, TEXTS[:2], prompts[0])
    assert fast.decoder._failed == {(2, 256)} and stand_ins.compiled == [] and stand_ins.replays == {}


def test_capture_plan_serves_batch_one_first_then_covers_every_batch(tts):  # noqa: F811
    decoder = FastTTS(tts, max_batch=4, max_len=1024, use_graphs=False).decoder
    first, rest = decoder.capture_plan([100, 300, 700])
    assert first == [(1, 256), (1, 512), (1, 768)]
    assert rest[0] == (4, 768)  # any batch of short texts replays a graph from here on
    assert rest[1:2] == [(1, 1024)]  # then any single request
    assert rest[2:] == [(2, 256), (2, 512), (2, 768), (4, 256), (4, 512), (2, 1024), (4, 1024)]
    assert sorted(first + rest) == sorted((r, n) for r in (1, 2, 4) for n in (256, 512, 768, 1024))
