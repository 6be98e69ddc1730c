"""`benchmarks/bench_first_audio.py` runs end to end on the CPU with the tiny checkpoint (a smoke test before a
GPU lease): every stream reports its first audio and phases, per depth, and the JSON is written."""

from __future__ import annotations

import json

import pytest

from tests.engine.bench_scripts import load_bench

pytestmark = pytest.mark.slow


def test_the_first_audio_benchmark_runs_on_the_cpu(tiny_checkpoint, tmp_path, monkeypatch):
    bench = load_bench("bench_first_audio", monkeypatch)
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
