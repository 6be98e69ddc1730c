"""Capturing CUDA graphs: one capture at a time in the process, and a helper for functions that read and write
fixed buffers (the speech decoder's windows, the prompt prefill's chunks).

Why one at a time: captures record on torch's one default capture stream, and while one runs the caching
allocator sends that stream's allocations to the capture's memory pool. Two threads capturing at once (the
decode loop capturing a batch shape while a request's prefill or speech decoding captures its own) break each
other: cuBLAS fails inside the capture, the capture is invalidated, and its pool stays marked as recording, so
every later capture fails ("already recording to mempool_id") and graphs recorded meanwhile can replay
garbage (device-side index asserts under load on one H200). Every capture in the product holds
`CAPTURE_LOCK`; nothing is acquired while holding it, so it cannot deadlock with the engine's other locks.

Each graph also gets a cuBLAS workspace of its own. cuBLAS keeps one workspace per handle and stream, and every
capture here records on that one capture stream, so all graphs baked in the same workspace address: the decode
loop's frames (its stream), the prompt prefill (the stager's) and the speech decoder (the callers') then ran
their split-K GEMMs through one scratch buffer at the same time, and under load rows came out as garbage: NaN
audio, or codes past the codebook (one H200 at batch 32; pytorch/pytorch#193402 describes the sharing). As
torch's own CUDA graph trees do (`clear_cublass_cache`), the workspaces are dropped before and after each
recording, so a capture allocates its workspace inside its own memory pool and eager work never inherits it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch

CAPTURE_LOCK = threading.Lock()


def record(graph: torch.cuda.CUDAGraph, step: Callable[[], object], *, pool: object = None) -> object:
    """Record `step` into `graph` (nothing executes), holding `CAPTURE_LOCK`; what the call returned (its
    tensors live in the graph's memory and are rewritten by every replay). `thread_local`: a thread doing host
    work meanwhile (validation, health) cannot spoil the capture."""
    with CAPTURE_LOCK, torch.inference_mode():
        torch._C._cuda_clearCublasWorkspaces()
        try:
            with torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local"):
                return step()
        finally:
            torch._C._cuda_clearCublasWorkspaces()


def capture_graph(step: Callable[[], object], device: torch.device) -> tuple[torch.cuda.CUDAGraph, object]:
    """Run `step` twice on a side stream (CUDA graphs want a warm-up), then record it; the graph and what the
    recorded call returned."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(2):
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    return graph, record(graph, step)
