"""Which graphs a generation uses while others are still being captured, on the CPU.

The CPU has no CUDA graphs, so compiling, warming up and recording are replaced by stand-ins: a new "graph" of a
shape replays that shape's eager frame (what the real graph replays) and counts its replays by kind (eager or
compiled); a compile can be held on an event, as a slow background compilation would be. Everything else (the
plan, the bookkeeping of which graph a shape replays, the locks, the background thread, prefill and the decode
loop) is the real decoder on the tiny checkpoint.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from backend.engine import Engine, EngineConfig
from backend.engine.fast import FastTTS
from backend.schema import CloneRequest
from tests.clips import sine_clip
from tests.engine.fast_fixtures import TEXTS, prompts, tts  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow
GREEDY = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=9)


class Stand_ins:  # noqa: N801 - reads as a noun in the tests
    """Compile, warm-up and graphs for a decoder whose `use_graphs` and `compiled` are forced on, recording
    which shapes ran how."""

    def __init__(self, decoder) -> None:
        self.decoder = decoder
        self.compiled: list = []
        self.replays: dict = {}  # (shape, "eager" | "compiled") -> frames replayed
        self.hold: dict = {}  # shape -> Event its compile waits for
        self.compiling = threading.Event()
        decoder.use_graphs = decoder.compiled = True
        decoder._compile = self.compile
        decoder._warm_up = lambda shape, *, compiled: None
        decoder._new_graph = self.new_graph

    def compile(self, shape) -> None:
        self.compiling.set()
        if shape in self.hold:
            assert self.hold[shape].wait(timeout=60)
        self.compiled.append(shape)
        self.decoder._ready.add(shape)

    def new_graph(self, shape, *, compiled: bool) -> SimpleNamespace:
        key = (shape, "compiled" if compiled else "eager")

        def replay() -> None:
            self.replays[key] = self.replays.get(key, 0) + 1
            self.decoder._frame(self.decoder.buffers, *shape, compiled=False)

        return SimpleNamespace(replay=replay)


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
    assert stand_ins.replays == {((2, 256), "compiled"): 8}
    assert all(torch.equal(a, b) for a, b in zip(during, after, strict=True))


def test_while_capturing_a_request_replays_the_smallest_captured_graph_that_holds_it(fast, prompts):  # noqa: F811
    stand_ins = Stand_ins(fast.decoder)
    for shape in [(1, 256), (4, 256), (4, 512)]:
        fast.decoder.capture(shape)
    stand_ins.hold[(2, 256)] = threading.Event()
    thread = fast.decoder.capture_in_background([(2, 256)])
    assert stand_ins.compiling.wait(timeout=60)
    codes(fast, TEXTS[:2], prompts[0])
    assert stand_ins.replays == {((4, 256), "compiled"): 8}  # batch 2 in the batch-4 graph, not the longer one
    stand_ins.hold[(2, 256)].set()
    thread.join(timeout=60)


def test_without_a_background_capture_a_request_captures_its_shape(fast, prompts):  # noqa: F811
    stand_ins = Stand_ins(fast.decoder)
    fast.decoder.capture((1, 256))
    codes(fast, TEXTS[:3], prompts[0])
    assert stand_ins.compiled == [(1, 256), (4, 256)] and stand_ins.replays == {((4, 256), "compiled"): 8}


def test_a_shape_whose_capture_failed_runs_eagerly_and_is_not_retried(fast, prompts):  # noqa: F811
    stand_ins = Stand_ins(fast.decoder)

    def broken(shape):
        raise torch.cuda.OutOfMemoryError("no room for this graph")

    fast.decoder._compile = broken
    fast.decoder.capture_in_background([(2, 256)]).join(timeout=60)
    fast.decoder._compile = stand_ins.compile
    codes(fast, TEXTS[:2], prompts[0])
    assert set(fast.decoder._failed) == {(2, 256)} and stand_ins.compiled == [] and stand_ins.replays == {}


def test_capture_plan_serves_batch_one_first_then_covers_every_batch(tts):  # noqa: F811
    decoder = FastTTS(tts, max_batch=4, max_len=1024, use_graphs=False).decoder
    first, rest = decoder.capture_plan([100, 300, 700])
    assert first == [(1, 256), (1, 512), (1, 768)]
    assert rest[0] == (4, 768)  # any batch of short texts replays a graph from here on
    assert rest[1:2] == [(1, 1024)]  # then any single request
    assert rest[2:] == [(2, 256), (2, 512), (2, 768), (4, 256), (4, 512), (2, 1024), (4, 1024)]
    assert sorted(first + rest) == sorted((r, n) for r in (1, 2, 4) for n in (256, 512, 768, 1024))


# -- two-stage start: eager graphs first, compiled ones swapped in ------------------------------------------------
def test_a_request_replays_the_eager_graph_until_its_compiled_graph_replaces_it(fast, prompts):  # noqa: F811
    """No request waits for the compile; the compiled graph serves the requests after it, with the same codes."""
    stand_ins = Stand_ins(fast.decoder)
    fast.decoder.capture_eager((1, 256))
    stand_ins.hold[(1, 256)] = threading.Event()
    thread = fast.decoder.capture_in_background([(1, 256)])
    assert stand_ins.compiling.wait(timeout=60)

    during = codes(fast, TEXTS[:1], prompts[0])
    assert thread.is_alive() and stand_ins.replays == {((1, 256), "eager"): 8}
    assert fast.decoder.graph_status() == dict(compiled=0, eager=1, capturing=True, failed={})

    stand_ins.hold[(1, 256)].set()
    thread.join(timeout=60)
    after = codes(fast, TEXTS[:1], prompts[0])
    assert stand_ins.replays == {((1, 256), "eager"): 8, ((1, 256), "compiled"): 8}
    assert fast.decoder.graph_status() == dict(compiled=1, eager=0, capturing=False, failed={})
    assert torch.equal(during[0], after[0])


def test_a_streaming_generation_keeps_the_graph_it_started_with(fast, prompts):  # noqa: F811
    """The compiled graph is ready mid-stream; it is swapped in after the stream, not under it."""
    stand_ins = Stand_ins(fast.decoder)
    fast.decoder.capture_eager((1, 256))
    inputs, settings = fast.talker_inputs(TEXTS[:1], ["english"], [prompts[0]], **GREEDY)
    stream = fast.decoder.frames(inputs, settings, chunks=(2,))
    next(stream)
    thread = fast.decoder.capture_in_background([(1, 256)])
    assert stand_ins.compiling.wait(timeout=60)
    rest = list(stream)
    thread.join(timeout=60)
    assert sum(chunk.shape[1] for chunk in rest) == 6
    assert stand_ins.replays == {((1, 256), "eager"): 8}
    assert fast.decoder.graph_status()["compiled"] == 1


def test_the_eager_graphs_of_the_background_come_before_any_compile(fast, prompts):  # noqa: F811
    stand_ins = Stand_ins(fast.decoder)
    stand_ins.hold[(1, 256)] = threading.Event()
    thread = fast.decoder.capture_in_background([(1, 256), (2, 256)], eager=[(2, 256), (4, 256)])
    assert stand_ins.compiling.wait(timeout=60)
    codes(fast, TEXTS[:2], prompts[0])
    assert stand_ins.replays == {((2, 256), "eager"): 8}
    stand_ins.hold[(1, 256)].set()
    thread.join(timeout=60)
    assert stand_ins.compiled == [(1, 256), (2, 256)]


def test_a_generation_goes_on_while_a_graph_is_being_recorded(fast, prompts):  # noqa: F811
    """Recording executes nothing: a request runs to its end while the background thread is stuck recording a
    graph, and the graph is swapped in once recorded."""
    stand_ins = Stand_ins(fast.decoder)
    recording, release = threading.Event(), threading.Event()
    record = stand_ins.new_graph

    def slow_record(shape, *, compiled):
        recording.set()
        assert release.wait(timeout=120)
        return record(shape, compiled=compiled)

    fast.decoder._new_graph = slow_record
    thread = fast.decoder.capture_in_background([], eager=[(2, 256)])
    assert recording.wait(timeout=60)
    finished = []
    runner = threading.Thread(target=lambda: finished.append(codes(fast, TEXTS[:1], prompts[0])))
    runner.start()
    runner.join(timeout=60)
    recorded_meanwhile = not runner.is_alive() and (2, 256) not in fast.decoder._graphs
    release.set()
    thread.join(timeout=60)
    runner.join(timeout=60)
    assert recorded_meanwhile and len(finished) == 1  # the request did not wait for the recording
    assert (2, 256) in fast.decoder._graphs


def test_a_compiled_graph_that_holds_the_batch_comes_before_its_own_eager_graph(fast, prompts):  # noqa: F811
    stand_ins = Stand_ins(fast.decoder)
    fast.decoder.capture_eager((2, 256))
    fast.decoder.capture((4, 256))
    codes(fast, TEXTS[:2], prompts[0])
    assert stand_ins.replays == {((4, 256), "compiled"): 8}


def test_a_failed_compile_leaves_the_eager_graphs_serving_and_health_says_so(tiny_checkpoint, monkeypatch):
    """The production start ("background") on the tiny checkpoint: eager graphs at load, then every compile
    fails (as without a C compiler for Triton); every shape keeps serving on its eager graph."""
    from backend.engine import fast as fast_package

    installed = []

    def with_stand_ins(*args, **kwargs):
        built = FastTTS(*args, **kwargs)
        installed.append(Stand_ins(built.decoder))
        built.decoder._compile = broken
        return built

    def broken(shape):
        raise RuntimeError("Failed to find C compiler.")

    monkeypatch.setattr(fast_package, "FastTTS", with_stand_ins)
    engine = Engine(EngineConfig(model=str(tiny_checkpoint), variant="test", engine_mode="fast", fast_max_batch=2,
                                 max_new_tokens_cap=200, fast_prompt_slots=312))  # "background": the default
    engine.load(start_background=False)  # as the Modal class does before its snapshot
    assert engine.health().fast_graphs.model_dump() == dict(compiled=0, eager=2, capturing=False, failed={})
    engine.start_background_capture().join(timeout=60)

    graphs = engine.health().fast_graphs
    assert graphs.compiled == 0 and graphs.eager == 4 and not graphs.capturing  # 2 batches x 2 lengths
    assert graphs.failed == {shape: "RuntimeError: Failed to find C compiler." for shape in
                             ("1x256", "1x512", "2x256", "2x512")}
    result = engine.clone(CloneRequest(reference=sine_clip(), text="Still served.", max_new_tokens=8))
    assert result.engine_mode == "fast" and result.frames > 0
    assert installed[0].replays == {((1, 256), "eager"): 7}


def test_compiled_functions_are_made_at_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Making a torch.compile wrapper imports Inductor: a decoder that serves eager graphs first must not pay it
    at construction, only when a compiled function first runs (and then once)."""
    from backend.engine.fast.layers import LayerRunner, LazyCompiled

    made: list[object] = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: made.append(fn) or (lambda *a, **k: ("compiled", a)))
    runner = LayerRunner(True)
    lazy = LazyCompiled(sum)
    assert made == []
    assert lazy([1, 2]) == ("compiled", ([1, 2],))
    assert lazy([3]) == ("compiled", ([3],))
    assert made == [sum]
    assert isinstance(runner.project, LazyCompiled) and isinstance(runner.finish, LazyCompiled)


def test_loading_starts_the_background_capture_unless_a_snapshot_follows(tiny_checkpoint, monkeypatch):
    """A local backend's engine: `load()` alone leaves the rest of the shapes to a thread, so no request of the
    running process ever waits for a compile; nothing is left for `start_background_capture` afterwards."""
    from backend.engine import fast as fast_package

    def with_stand_ins(*args, **kwargs):
        built = FastTTS(*args, **kwargs)
        Stand_ins(built.decoder)
        return built

    monkeypatch.setattr(fast_package, "FastTTS", with_stand_ins)
    engine = Engine(EngineConfig(model=str(tiny_checkpoint), variant="test", engine_mode="fast", fast_max_batch=2,
                                 max_new_tokens_cap=200, fast_prompt_slots=312))
    engine.load()
    for thread in threading.enumerate():
        if thread.name == "fast-graph-capture":
            thread.join(timeout=60)
    graphs = engine.health().fast_graphs
    assert (graphs.compiled, graphs.eager, graphs.capturing) == (4, 0, False)  # 2 batches x 2 lengths, compiled
    assert engine.start_background_capture() is None


def test_the_background_runs_its_first_step_before_any_frame_graph_and_survives_its_failure(fast):
    """The speech decoder's other graphs go first (every request decodes speech); if that step fails, the frame
    graphs are still captured."""
    stand_ins = Stand_ins(fast.decoder)
    order: list = []
    record = stand_ins.new_graph
    fast.decoder._new_graph = lambda shape, *, compiled: order.append(shape) or record(shape, compiled=compiled)
    fast.decoder.capture_in_background([(1, 256)], eager=[(2, 256)], before=lambda: order.append("first")).join(60)
    assert order == ["first", (2, 256), (1, 256)]

    fast.decoder.capture_in_background([(4, 256)], before=lambda: 1 / 0).join(60)
    assert fast.decoder.graph_status()["compiled"] == 2


def test_the_prefill_s_and_speech_decoder_s_other_graphs_wait_for_the_background(tiny_checkpoint, monkeypatch):
    """Before serving, the prompt prefill and the speech decoder capture only what a lone request needs; the rest
    is the background thread's first step, started after a snapshot as the Modal class does."""
    from backend.engine import fast as fast_package

    calls: list[str] = []

    def with_stand_ins(*args, **kwargs):
        built = FastTTS(*args, **kwargs)
        Stand_ins(built.decoder)
        built.decoder.stager.prefill.capture = lambda lengths=None: calls.append(f"prefill {lengths}")
        built.speech.capture_first = lambda: calls.append("speech first")
        built.speech.capture = lambda: calls.append("speech rest")
        return built

    monkeypatch.setattr(fast_package, "FastTTS", with_stand_ins)
    engine = Engine(EngineConfig(model=str(tiny_checkpoint), variant="test", engine_mode="fast", fast_max_batch=2,
                                 max_new_tokens_cap=200, fast_prompt_slots=312))
    engine.load(start_background=False)
    assert calls == ["prefill (256, 512, 768)", "speech first"]
    engine.start_background_capture().join(timeout=60)
    assert calls == ["prefill (256, 512, 768)", "speech first", "prefill None", "speech rest"]


EXITING_DURING_A_CAPTURE = """
import threading, time
from types import SimpleNamespace
from backend.engine.fast import background

entered = threading.Event()

def capture(shape):
    entered.set()
    time.sleep(1.0)
    print("captured", shape, flush=True)

decoder = SimpleNamespace(capture=capture, capture_eager=capture, _failed={}, _graphs={}, _compiled_graphs={},
                          serving=False, _background=False)
background.start(decoder, [(1, 256), (2, 256), (4, 256)])
assert entered.wait(30)
"""  # the main thread ends here, while the background thread is inside its first capture


def test_a_process_exiting_mid_capture_lets_that_capture_finish_and_starts_no_other():
    """A daemon thread inside a compile when the interpreter stops was aborted by the C++ runtime on a GPU: the
    process died with SIGABRT after its work was done. At exit the capture in hand finishes, no other starts."""
    done = subprocess.run([sys.executable, "-c", EXITING_DURING_A_CAPTURE], cwd=Path(__file__).parents[2],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [line for line in done.stdout.splitlines() if line.startswith("captured")] == ["captured (1, 256)"]
    assert "fast.background_stopped" in done.stdout and "left=2" in done.stdout
