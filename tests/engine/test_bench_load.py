"""`benchmarks/bench_load.py` runs end to end on the CPU with the tiny checkpoint (a smoke test before a GPU
lease): every server answers every request, streams report a first chunk, and the JSON and table are written."""

from __future__ import annotations

import json

import pytest

from tests.engine.bench_scripts import load_bench

pytestmark = pytest.mark.slow


def test_the_load_benchmark_runs_on_the_cpu(tiny_checkpoint, tmp_path, monkeypatch):
    bench = load_bench("bench_load", monkeypatch)
    out = tmp_path / "load.json"
    bench.run(bench.parser().parse_args([
        "--preset", tiny_checkpoint.name, "--checkpoint", str(tiny_checkpoint.parent), "--device", "cpu",
        "--rates", "50", "--requests", "4", "--frame-scale", "0.03", "--max-batch", "2", "--out", str(out)]))

    result = json.loads(out.read_text())
    assert [row["server"] for row in result["rows"]] == ["continuous", "static", "one-at-a-time"]
    for row in result["rows"]:
        assert row["errors"] == 0, row["errors_seen"]
        assert row["first_audio_p50_ms"] is not None and row["aggregate_audio_s_per_s"] > 0
    assert set(result["solo_ms"]) == {"12", "44", "187", "506", "stream_first_audio"}
    loop = result["rows"][0]["loop"]
    assert loop["joins"] == 4 and loop["steps"] > 0 and loop["rows_per_step"] >= 1
    assert {"frame_ms", "stage_ms", "chunk_decode_2_ms", "clip_decode_160_ms"} <= set(result["micro"])
    assert "| continuous | 50 |" in out.with_suffix(".md").read_text()
