"""How far the decode loop may run ahead of the GPU, and how it waits for it: two frames queued, waits that
release the GIL.

Launching a frame is a graph replay, a fraction of a millisecond on the host, while the GPU takes several
milliseconds to run it (about two thousand small kernels: the talker's layers, then the code predictor's fifteen
steps). Between two looks (EOS checks, stream chunks) nothing held the loop back, so it queued every frame up to
the next look, and then read its host copies (`.tolist()`, `.to("cpu")`), which waited for the GPU inside the
call. Meanwhile the threads that turn codes into audio (speech decoding, the watermark) crawled: on one H200 a
lone stream's codes were ready 30 ms after the call and its first audio came after 420 ms, its watermark's few
dozen kernel launches taking 20-50 ms each (torch profiler; `benchmarks/runs/h200-first-audio-*.log`).

So the loop records an event after each frame it launches and, with more than `depth` frames in flight, waits
for the oldest; before a look it waits for its last frame the same way (`Event.synchronize` releases the GIL),
so the host copies that follow find their data ready. Measured on one H200, 1.7B random weights
(`benchmarks/bench_first_audio.py`): a lone stream's first audio 42 ms whatever the depth (the wait before a
look is what matters there); 16 streams started at once, first audio p50/p95 656/744 ms with no limit, 340/357
ms at depth 2, 380/420 ms at depth 1 (the GPU idles while the host prepares the next frame), 348/370 ms at
depth 3; whole-clip throughput the same at every depth.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

RUN_AHEAD_FRAMES = 2


class Fence(Protocol):
    """What the loop needs of a `torch.cuda.Event`."""

    def record(self) -> None: ...

    def synchronize(self) -> None: ...


class FramePacer:
    """Counts the frames the loop has queued and holds it at `depth` in flight; without an event factory (CPU:
    every frame runs before the launch returns) it does nothing."""

    def __init__(self, depth: int = RUN_AHEAD_FRAMES, make_fence: Callable[[], Fence] | None = None) -> None:
        if depth < 1:
            raise ValueError("the loop must be allowed at least one frame in flight")
        self.depth = depth
        self.make_fence = make_fence
        self._in_flight: deque[Fence] = deque()

    def queued(self) -> None:
        """A frame was just launched on the loop's stream: fence it, and wait while too many are in flight."""
        if self.make_fence is None:
            return
        fence = self.make_fence()
        fence.record()
        self._in_flight.append(fence)
        while len(self._in_flight) > self.depth:
            self._in_flight.popleft().synchronize()

    def drain(self) -> None:
        """Wait until every launched frame has run (before the host reads what they wrote)."""
        if self._in_flight:
            self._in_flight[-1].synchronize()  # a stream runs in order: the last one done means all are
            self._in_flight.clear()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)
