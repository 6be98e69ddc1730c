"""Every capture runs alone and gets a cuBLAS workspace of its own (no GPU here: torch's capture is faked)."""

from __future__ import annotations

import contextlib

import pytest
import torch

from backend.engine.fast import graphs


@pytest.fixture
def events(monkeypatch):
    happened: list[str] = []

    @contextlib.contextmanager
    def fake_graph(graph, pool=None, capture_error_mode="global"):
        happened.append(f"capture {capture_error_mode}")
        yield
        happened.append("captured")

    monkeypatch.setattr(torch.cuda, "graph", fake_graph)
    monkeypatch.setattr(torch._C, "_cuda_clearCublasWorkspaces", lambda: happened.append("clear"), raising=False)
    return happened


def test_a_recording_starts_and_ends_with_fresh_cublas_workspaces(events):
    def step():
        events.append(f"step, lock held: {graphs.CAPTURE_LOCK.locked()}")
        return "out"

    assert graphs.record(object(), step) == "out"
    assert events == ["clear", "capture thread_local", "step, lock held: True", "captured", "clear"]
    assert not graphs.CAPTURE_LOCK.locked()


def test_a_failed_recording_still_leaves_no_workspace_behind(events):
    def step():
        raise RuntimeError("cuBLAS failed inside the capture")

    with pytest.raises(RuntimeError, match="inside the capture"):
        graphs.record(object(), step)
    assert events[0] == "clear" and events[-1] == "clear"
    assert not graphs.CAPTURE_LOCK.locked()
