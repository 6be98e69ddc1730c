"""`benchmarks/bench_coldstart.py` runs end to end on the CPU with the tiny checkpoint (a smoke test before a GPU
lease, which a stale script would waste): a fresh serving process reports every phase of its start, its first
request streamed, and the spans of each step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]


def test_the_cold_start_benchmark_runs_on_the_cpu(tiny_checkpoint, tmp_path):
    out = tmp_path / "coldstart.json"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPYCACHEPREFIX"}  # no byte-compiling
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_coldstart.py", "--preset", tiny_checkpoint.name, "--checkpoint",
         str(tiny_checkpoint.parent), "--device", "cpu", "--frames", "6", "--scenarios", "second",  # page cache kept
         "--imports", "0", "--parity", "none", "--background-limit", "30", "--child-limit", "300",
         "--work", str(tmp_path / "work"), "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    result = json.loads(out.read_text())
    assert result["numba_cache_warmed_s"] > 0  # numba's cache filled first, as the images' build step does
    process = result["scenarios"]["second"]
    assert "error" not in process, process.get("error")
    marks = process["marks"]
    assert marks["imported"] < marks["ready"] < marks["first_audio"] <= marks["first_result"]
    assert process["first_frames"] == 6
    spans = process["spans"]
    for step in ("weights", "watermark_load", "decoder_init", "talker_inputs", "stage", "speech_decode", "mark"):
        assert spans[step], step
    assert spans["watermark_load"][0]["start"] < marks["ready"] < spans["mark"][0]["start"]
