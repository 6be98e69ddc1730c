"""`benchmarks/check_background_capture.py` runs end to end on the CPU with the tiny checkpoint (a smoke test
before a GPU lease): the prefills beside the capture agree with the ones before it, and a clone follows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[2]


def test_the_background_capture_check_runs_on_the_cpu(tiny_checkpoint):
    done = subprocess.run([sys.executable, "benchmarks/check_background_capture.py", "--device", "cpu",
                           "--checkpoint", str(tiny_checkpoint)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "differing from before: none" in done.stdout and done.stdout.rstrip().endswith("OK")
