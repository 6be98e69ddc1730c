"""`benchmarks/bench_speak.py` runs end to end on the CPU with the tiny checkpoint (a smoke test before a GPU
lease): `/speak` reaches the paced reader with speech, the long text runs batched, sequential and streamed, and
the JSON is written."""

from __future__ import annotations

import json

import pytest

from tests.engine.bench_scripts import load_bench

pytestmark = pytest.mark.slow


def test_the_speak_benchmark_runs_on_the_cpu(tiny_checkpoint, tmp_path, monkeypatch):
    bench = load_bench("bench_speak", monkeypatch)
    out = tmp_path / "speak.json"
    bench.run(bench.parser().parse_args([
        "--preset", tiny_checkpoint.name, "--checkpoint", str(tiny_checkpoint.parent), "--device", "cpu",
        "--repeats", "2", "--long-chars", "700", "--frame-scale", "0.1", "--out", str(out)]))

    result = json.loads(out.read_text())
    speak = result["speak"]
    assert len(speak["first_audio_ms"]) == 2 and all(ms > 0 for ms in speak["first_audio_ms"])
    assert speak["audio_s"] > 0 and speak["worst_underrun_ms"] >= 0
    long = result["long_text"]
    assert long["pieces"] >= 3 and 600 < long["chars"] <= 700
    assert long["batched_s"] > 0 and long["sequential_s"] > 0 and long["stream_first_audio_ms"] > 0
    # the same pieces, so the same audio whichever way they were generated (crossfades aside)
    assert long["audio_s"] == pytest.approx(long["sequential_audio_s"], abs=0.05 * long["pieces"])
    assert long["stream_audio_s"] == pytest.approx(long["audio_s"], abs=0.05)
