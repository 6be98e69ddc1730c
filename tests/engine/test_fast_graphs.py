"""Every capture runs alone, and each family of graphs records on a stream of its own, so graphs that may replay
at the same time never share a cuBLAS workspace (no GPU here: torch's capture and streams are faked)."""

from __future__ import annotations

import contextlib
import itertools

import pytest
import torch

from backend.engine.fast import graphs


@pytest.fixture
def captures(monkeypatch):
    """The stream each recording captured on, in order."""
    streams, seen = itertools.count(), []

    @contextlib.contextmanager
    def fake_graph(graph, pool=None, stream=None, capture_error_mode="global"):
        assert capture_error_mode == "thread_local"
        seen.append(stream)
        yield

    monkeypatch.setattr(torch.cuda, "graph", fake_graph)
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: f"stream {next(streams)}")
    return seen


def test_a_family_records_every_graph_on_its_own_stream_and_holds_the_lock(captures):
    frames, speech = graphs.GraphFamily("cpu"), graphs.GraphFamily("cpu")

    def step():
        assert graphs.CAPTURE_LOCK.locked()
        return "out"

    assert [family.record(object(), step) for family in (frames, frames, speech, frames)] == ["out"] * 4
    assert captures[0] == captures[1] == captures[3] != captures[2]  # one stream per family, made once
    assert None not in captures  # never torch's shared default capture stream
    assert not graphs.CAPTURE_LOCK.locked()


def test_a_failed_recording_releases_the_lock(captures):
    def step():
        raise RuntimeError("cuBLAS failed inside the capture")

    with pytest.raises(RuntimeError, match="inside the capture"):
        graphs.GraphFamily("cpu").record(object(), step)
    assert not graphs.CAPTURE_LOCK.locked()


def test_a_key_is_captured_once_and_a_failed_one_is_not_retried():
    graphs_by_key, failed, calls = {}, set(), []

    def build(value):
        def run():
            calls.append(value)
            if value is None:
                raise RuntimeError("capture failed")
            return value
        return run

    graphs.capture_once(graphs_by_key, failed, 40, build("graph"), family="test")
    graphs.capture_once(graphs_by_key, failed, 40, build("another"), family="test")
    graphs.capture_once(graphs_by_key, failed, 80, build(None), family="test")
    graphs.capture_once(graphs_by_key, failed, 80, build("late"), family="test")
    assert graphs_by_key == {40: "graph"} and failed == {80} and calls == ["graph", None]
