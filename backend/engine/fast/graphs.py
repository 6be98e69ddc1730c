"""Capturing CUDA graphs: one capture at a time in the process, each family of graphs on a capture stream of its
own, and a helper for functions that read and write fixed buffers (the speech decoder's windows, the prompt
prefill's chunks).

Why one at a time: while a capture runs, the caching allocator sends its stream's allocations to the capture's
memory pool. Two threads capturing at once (the decode loop capturing a batch shape while a request's prefill
or speech decoding captures its own) broke each other: cuBLAS failed inside the capture, the capture was
invalidated, and its pool stayed marked as recording, so every later capture failed ("already recording to
mempool_id"). Every capture in the product holds `CAPTURE_LOCK`; nothing is acquired while holding it, so it
cannot deadlock with the engine's other locks.

Why a capture stream per family: cuBLAS keeps one workspace per handle and stream, and a graph bakes in the
address of the one it was captured with. Recorded on torch's single default capture stream, every graph shared
one workspace: the decode loop's frames (on its stream), the prompt prefill (the stager's) and the speech decoder
(the callers') ran their split-K GEMMs through one scratch buffer at the same time, and under load rows came out
as garbage: NaN audio, codes past the codebook (one H200 at batch 32; pytorch/pytorch#193402 describes the
sharing). A `GraphFamily` is a set of graphs that replay one at a time on one stream; captured on a stream of its
own, it has a workspace of its own, which its graphs may share since they never run at once. (Dropping the
workspaces around each capture, as torch's graph trees do, also separates them, but it rewrites cuBLAS's global
workspace map while other threads run eager GEMMs, which the torch 2.9 image does without a lock.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

import structlog
import torch

log = structlog.get_logger(__name__)
CAPTURE_LOCK = threading.Lock()


def capture_once(graphs: dict, failed: set, key: Hashable, build: Callable[[], object], *, family: str) -> None:
    """Put `build()` (a capture) in `graphs[key]` unless `key` has a graph or its capture failed before. Published
    whole, once complete: a request looks its graph up without a lock and runs eagerly until then. A failure is
    logged and leaves `key` eager for good."""
    if key in graphs or key in failed:
        return
    try:
        graphs[key] = build()
    except Exception as error:  # noqa: BLE001 - that key runs eagerly
        failed.add(key)
        log.warning("fast.graph_capture_failed", family=family, key=key, error=repr(error)[:300])


class GraphFamily:
    """Graphs that replay one at a time on one stream (a batch's frames, a prefill's chunks, one decoder's windows),
    captured on a stream of their own (made at the first capture, on `device`)."""

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self._stream: torch.cuda.Stream | None = None

    def record(self, graph: torch.cuda.CUDAGraph, step: Callable[[], object], *, pool: object = None) -> object:
        """Record `step` into `graph` (nothing executes), holding `CAPTURE_LOCK`; what the call returned (its
        tensors live in the graph's memory and are rewritten by every replay). `thread_local`: a thread doing
        host work meanwhile (validation, health) cannot spoil the capture."""
        with CAPTURE_LOCK, torch.inference_mode():
            if self._stream is None:
                self._stream = torch.cuda.Stream(self.device)
            with torch.cuda.graph(graph, pool=pool, stream=self._stream, capture_error_mode="thread_local"):
                return step()

    def capture(self, step: Callable[[], object], *, warm_up: Callable[[], object] | None = None,
                ) -> tuple[torch.cuda.CUDAGraph, object]:
        """Run `warm_up` (by default `step`; the same kernels on buffers of its own, where `step`'s buffers are in
        use) twice on a side stream, as CUDA graphs want, then record `step`; the graph and what the recorded call
        returned."""
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(2):
                (warm_up or step)()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        return graph, self.record(graph, step)
