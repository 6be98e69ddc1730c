"""What one hostile reference clip costs the intake: peak memory and time, each file in a fresh process.

The files are `tests/bombs.py`'s decompression bombs and lying headers at full size (10 minutes of silence
where the limit is 30 s, or hours declared in a few bytes), garbage behind an audio signature, and normal
clips for scale. Each runs in its own subprocess, so one file's peak cannot hide another's: the row gives the
growth of that process's peak RSS over its baseline (interpreter, libraries and the file's bytes already
loaded), the peak RSS of the ffmpeg it ran, if any, and the wall time of the call.

    python benchmarks/bench_intake.py --machine "2-core CPU" --out benchmarks/runs/intake/cpu2.json
    # the same files through another checkout's intake, for a before/after table:
    python benchmarks/bench_intake.py --root /path/to/old/checkout --entry backend.audio:load_reference ...
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOMB_SECONDS = 600.0


def hostile_files(directory: Path) -> dict[str, bytes]:
    """Every file the benchmark feeds the intake, by name."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from tests.bombs import bombs
    from tests.clips import ffmpeg_encode, sine_clip

    files = {name: make() for name, make in bombs(BOMB_SECONDS, directory).items()}
    files["amr-header-on-10mb-random"] = b"#!AMR\n" + np.random.default_rng(0).bytes(10 * 1024 * 1024 - 100)
    voice = sine_clip(3.0, 48_000)
    mp3 = ffmpeg_encode(voice, "mp3", directory / "voice.mp3")
    files |= {
        "normal-wav-3s": voice,
        "normal-m4a-3s": ffmpeg_encode(voice, "m4a", directory / "voice.m4a"),
        "normal-mp3-3s": mp3,
        "mp3-missing-first-2kib": mp3[2048:],
    }
    return files


def measure_one(path: Path, entry: str) -> dict:
    """Run in the child: load the entry point and the file, then call it once and report what it cost."""
    module, function = entry.split(":")
    load = getattr(importlib.import_module(module), function)
    data = path.read_bytes()
    limits = _default_limits(module)
    baseline = _reset_peak_rss()
    started = time.perf_counter()
    try:
        load(data, limits)
        outcome = "accepted"
    except Exception as exc:  # noqa: BLE001 - the outcome is what is measured, an uncaught type included
        outcome = getattr(exc, "code", None) or f"unhandled {type(exc).__name__}"
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"outcome": outcome, "seconds": round(seconds, 3), "rss_growth_mb": round((peak - baseline) / 1024, 1),
            "ffmpeg_rss_mb": round(child / 1024, 1) if child else None}


def _reset_peak_rss() -> int:
    """Reset this process's peak RSS to its current RSS (Linux: clear_refs 5) and return it, in KiB.

    Without the reset the peak would still hold the imports' transient high (and `ru_maxrss` even the
    parent's RSS at fork), hiding what the call itself costs.
    """
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS")


def _status_kib(field: str) -> int:
    """A memory field of /proc/self/status ("VmRSS", "VmHWM"), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _default_limits(module: str):
    """The defaults of whichever intake is measured (the old one kept `AudioLimits` in `backend.audio`)."""
    for name in ("backend.intake", module):
        try:
            return importlib.import_module(name).AudioLimits()
        except (ImportError, AttributeError):
            continue
    raise RuntimeError("no AudioLimits found")


def run(files: dict[str, bytes], directory: Path, root: Path, entry: str) -> list[dict]:
    rows = []
    for name, data in files.items():
        path = directory / f"{name}.bin"
        path.write_bytes(data)
        child = subprocess.run(
            [sys.executable, __file__, "--one", str(path), "--entry", entry],
            cwd=root, capture_output=True, text=True, timeout=300, check=False,
            env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        )
        if child.returncode != 0:
            measured = {"outcome": f"process died ({child.returncode}): {child.stderr.strip()[-200:]}"}
        else:
            measured = json.loads(child.stdout.strip().splitlines()[-1])
        rows.append({"file": name, "bytes": len(data), **measured})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| file | size | outcome | peak RSS growth | ffmpeg peak RSS | time |", "|---|---:|---|---:|---:|---:|"]
    for row in rows:
        ffmpeg_rss = f"{row['ffmpeg_rss_mb']} MB" if row.get("ffmpeg_rss_mb") else "-"
        lines.append(f"| {row['file']} | {_size(row['bytes'])} | {row['outcome']} | "
                     f"{row.get('rss_growth_mb', '-')} MB | {ffmpeg_rss} | {row.get('seconds', '-')} s |")
    return "\n".join(lines)


def _size(nbytes: int) -> str:
    return f"{nbytes / 1024 / 1024:.2f} MB" if nbytes >= 1024 * 1024 else f"{nbytes / 1024:.1f} KB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entry", default="backend.intake:load_reference", help="module:function(data, limits)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose intake is measured")
    parser.add_argument("--machine", default=platform.node(), help="named in the JSON, e.g. '2-core CPU'")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # the child's mode: measure one file
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.entry)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        directory = Path(tmp)
        files = hostile_files(directory)
        rows = run(files, directory, args.root.resolve(), args.entry)
    print(table(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "machine": args.machine, "entry": args.entry, "root": str(args.root),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "python": platform.python_version(),
            "bomb_seconds": BOMB_SECONDS, "rows": rows,
        }, indent=1) + "\n")


if __name__ == "__main__":
    main()
