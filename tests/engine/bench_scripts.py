"""Loading a benchmark script (`benchmarks/<name>.py`, not a package) the way `python3 benchmarks/<name>.py` runs
it, for the CPU smoke tests that run each one before a GPU lease."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def load_bench(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script's module, registered under its name for the test (its dataclasses look their module up)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, bench)
    spec.loader.exec_module(bench)
    return bench
