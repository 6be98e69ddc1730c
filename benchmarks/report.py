"""Turn the JSON files of `bench_gpu.py` runs (benchmarks/runs/) into benchmarks/RESULTS.md's table and a plot.

Runs on any machine (no GPU): python benchmarks/report.py. The prose of RESULTS.md lives in its header and
footer templates below; the numbers come only from the JSON files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_runs(folder: Path) -> list[tuple[str, dict]]:
    return [(path.name, json.loads(path.read_text())) for path in sorted(folder.glob("*.json"))]


def table(runs: list[tuple[str, dict]]) -> str:
    lines = ["| variant | run (file in benchmarks/runs/) | ms/frame | xRT per stream | aggregate audio-s/s "
             "| first audio ms | peak GB | repeats (s) |", "|---|---|---|---|---|---|---|---|"]
    for name, run in runs:
        dtype = run.get("dtype", "bfloat16")
        for row in run["rows"]:
            if dtype != "bfloat16":
                row = dict(row, variant=f"{row['variant']} ({dtype})")
            if "ms_per_frame" in row:
                lines.append(f"| {row['variant']} | {name} | {row['ms_per_frame']:.2f} | {row['xrt_per_stream']:.2f} "
                             f"| {row['aggregate_audio_s_per_s']:.1f} | | {row['peak_gb']:.2f} "
                             f"| {', '.join(f'{t:.2f}' for t in row['times_s'])} |")
            elif "first_audio_ms" in row:
                lines.append(f"| {row['variant']} | {name} | | | | {row['first_audio_ms']:.1f} | | "
                             f"{', '.join(f'{t:.0f} ms' for t in row['first_audio_all_ms'])} |")
            elif "error" in row:
                lines.append(f"| {row['variant']} | {name} | failed: {row['error'][:60]} | | | | | |")
    return "\n".join(lines)


def plot(runs: list[tuple[str, dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = [(row["variant"], row) for _, run in runs for row in run["rows"] if "ms_per_frame" in row]
    fast = sorted((row["streams"], row["aggregate_audio_s_per_s"]) for name, row in timed if name.startswith("fast b"))
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = [f"{name}\n({row['ms_per_frame']:.1f} ms/frame)" for name, row in timed]
    left.barh(names, [row["xrt_per_stream"] for _, row in timed], color=["tab:green" if n.startswith("fast") else
                                                                       "tab:gray" for n, _ in timed])
    left.axvline(10, color="tab:red", linestyle="--", label="goal: 10x")
    left.set_xscale("log")
    left.set_xlabel("real-time factor per stream (x, log)")
    left.legend()
    right.plot([b for b, _ in fast], [a for _, a in fast], marker="o", color="tab:green", label="fast engine")
    right.axhline(100, color="tab:red", linestyle="--", label="goal at 16 streams: 100")
    right.set_xlabel("concurrent streams (one batch)")
    right.set_ylabel("aggregate audio-seconds per second")
    right.legend()
    figure.suptitle("Qwen3-TTS 1.7B shapes, bf16, 250 frames, H100 80GB HBM3")
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def main() -> None:
    runs = load_runs(HERE / "runs")
    header = (HERE / "RESULTS.head.md").read_text()
    footer = (HERE / "RESULTS.foot.md").read_text()
    (HERE / "RESULTS.md").write_text(header + "\n" + table(runs) + "\n\n" + footer)
    plot(runs, HERE / "results.png")
    print("wrote RESULTS.md and results.png", file=sys.stderr)


if __name__ == "__main__":
    main()
