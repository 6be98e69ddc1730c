"""`benchmarks/bench_first_audio.py` runs end to end on the CPU with the tiny checkpoint (a smoke test before a
GPU lease): every stream reports its first audio and phases, per depth, and the JSON is written."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_first_audio.py"


def test_the_first_audio_benchmark_runs_on_the_cpu(tiny_checkpoint, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_first_audio", BENCH)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_first_audio", bench)
    spec.loader.exec_module(bench)
    out = tmp_path / "first-audio.json"
    bench.run(bench.parser().parse_args([
        "--preset", tiny_checkpoint.name, "--checkpoint", str(tiny_checkpoint.parent), "--device", "cpu",
        "--streams", "1,2", "--depths", "2,1", "--frames", "6", "--repeats", "2", "--max-batch", "2",
        "--out", str(out)]))

    result = json.loads(out.read_text())
    assert set(result["depths"]) == {"2", "1"}
    for row in result["depths"].values():
        assert row["lone_first_audio_ms"]["p50"] > 0
        steps = row["lone_steps_ms"]  # the path to the first chunk, in order
        assert steps["check began"] <= steps["talker_inputs began"] <= steps["join began"] <= steps["speech began"]
        assert steps["speech ended"] <= steps["mark ended"]
        assert set(row["at_once"]) == {"1", "2"}
        phases = row["at_once"]["2"]["phases_ms"]
        assert phases["queued"]["p50"] <= phases["joined"]["p50"] <= phases["first_codes"]["p50"]
        assert row["whole_clips_frames_per_s"] > 0
