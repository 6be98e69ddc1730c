"""Capturing a CUDA graph of a function that reads and writes fixed buffers (the speech decoder's windows, the
prompt prefill's chunks): warmed up on a side stream first, as CUDA graphs want, then recorded."""

from __future__ import annotations

from collections.abc import Callable

import torch


def capture_graph(step: Callable[[], object], device: torch.device) -> tuple[torch.cuda.CUDAGraph, object]:
    """Run `step` twice on a side stream, then record it; the graph and what the recorded call returned (its
    output tensors live in the graph's memory and are rewritten by every replay)."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(2):
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        output = step()
    return graph, output
