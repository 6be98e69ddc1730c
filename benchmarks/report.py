"""Turn the JSON files of `bench_gpu.py` and `bench_peer.py` runs (benchmarks/runs/) into benchmarks/RESULTS.md's
table, a same-call comparison with the peer, a plot, the cold-start table of `bench_coldstart.py` runs and the
watermark results (RESULTS.watermark.md).

Runs on any machine (no GPU): python benchmarks/report.py. The prose of RESULTS.md lives in its header and
footer templates (RESULTS.head.md, RESULTS.foot.md); the numbers come only from the JSON files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER = "faster-qwen3-tts"


def load_runs(folder: Path) -> list[tuple[str, dict]]:
    return [(path.name, json.loads(path.read_text())) for path in sorted(folder.glob("*.json"))]


def load_table(runs: list[tuple[str, dict]]) -> str:
    """One row per server and arrival rate of each `bench_load.py` run, then its solo latencies and, where
    measured, the costs a scheduler works with and where the decode loop's time went."""
    lines = ["| run (file in benchmarks/runs/) | server | arrivals/s | stream first audio p50 / p95 ms "
             "| 12 ch p95 ms | 506 ch p95 ms | audio-s/s | rows per step | peak GB | errors |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for name, run in runs:
        for row in run["rows"]:
            loop = row.get("loop", {})
            lines.append(f"| {name} | {row['server']} | {row['rate']:g} | {row['first_audio_p50_ms']} / "
                         f"{row['first_audio_p95_ms']} | {row['latency_ms']['12']['p95']} "
                         f"| {row['latency_ms']['506']['p95']} | {row['aggregate_audio_s_per_s']:.1f} "
                         f"| {loop.get('rows_per_step', '-')} | {row['peak_gb']:.1f} | {row['errors']} |")
        solo = ", ".join(f"{key} {value:g} ms" for key, value in run.get("solo_ms", {}).items())
        notes.append(f"- `{name}` ({run['card']}, max batch {run['max_batch']}): `{run['command']}`. Solo: {solo}.")
        if "micro" in run:
            notes.append(f"  Costs: {json.dumps(run['micro'])}")
    return "\n".join(lines + [""] + notes)


def coldstart_table(runs: list[tuple[str, dict]]) -> str:
    """One row per process of each `bench_coldstart.py` run: seconds from launch to each phase. Runs before the
    two-stage start captured compiled graphs at load (no eager graphs, no plan spans)."""
    lines = ["| run (file in benchmarks/runs/) | process | page cache dropped | torch imported | all imported "
             "| Engine.load (weights; first captures) | ready | first audio | first result (graph it replayed) "
             "| burst of 4 while capturing | first request's shape compiled and swapped in | every shape compiled "
             "| compile cache MB |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, run in runs:
        for process, result in run["scenarios"].items():
            if "marks" not in result:
                lines.append(f"| {name} | {process} | failed: {result.get('error', '')[-60:]!r} |||||||||||")
                continue
            marks, spans = result["marks"], result["spans"]
            first = [span for key in ("capture", "capture_eager") for span in spans.get(key, [])
                     if span["thread"] == "MainThread" and span["start"] < marks["ready"]]
            captures = " + ".join(f"{span['seconds']:.1f}" for span in sorted(first, key=lambda span: span["start"]))
            weights = "".join(f"{span['seconds']:.1f}; " for span in spans.get("weights", []))
            plans = spans.get("plan", [])
            graph = f" ({plans[0]['what'].rsplit(' ', 1)[1]})" if plans else ""
            swapped = marks.get("first_shape_compiled_swapped_in")
            lines.append(
                f"| {name} | {process} | {'yes' if result.get('page_cache_dropped') else 'no'} "
                f"| {marks['torch_imported']:.1f} | {marks['imported']:.1f} | {result['load_s']:.1f} ({weights}"
                f"{captures}) | {marks['ready']:.1f} | {_seconds(marks.get('first_audio'))} "
                f"| {marks['first_result']:.1f}{graph} "
                f"| {marks['burst4_while_capturing_s']:.1f} s | {f'{swapped:.1f}' if swapped else '-'} "
                f"| {_all_compiled(result)} "
                f"| {result.get('compile_cache_mb', result.get('sizes_mb', {}).get('volume', 0.0)):.0f} |")
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _all_compiled(result: dict) -> str:
    """When the background thread had every shape compiled, or how many it had when the process stopped waiting."""
    marks, graphs = result["marks"], result.get("graphs")
    if "background_done" in marks:
        return f"{marks['background_done']:.1f}"
    if isinstance(graphs, dict):
        total = graphs["compiled"] + graphs["eager"]
        return f"{graphs['compiled']} of {total} by {marks['background_unfinished']:.0f} s"
    return "not within the limit"


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


def same_call(runs: list[tuple[str, dict]]) -> str:
    """Ours vs the peer for every `call` label that both bench_gpu.py and bench_peer.py runs carry."""
    calls: dict[str, list[tuple[str, dict]]] = {}
    for name, run in runs:
        if run.get("call"):
            calls.setdefault(run["call"], []).append((name, run))
    sections = []
    for call, members in calls.items():
        rows = {row["variant"]: (name, run, row) for name, run in members for row in run["rows"] if "error" not in row}
        peer = [(v, r) for v, r in rows.items() if v.startswith(PEER)]
        if "fast b1" not in rows or not peer:
            continue
        ours_file, ours_run, fast = rows["fast b1"]
        peer_file, peer_run, timed = rows.get(f"{PEER} b1", (None, None, None))
        stream = rows.get("fast stream", (None, None, None))[2]
        streams = sorted((row for _, (_, _, row) in peer if "first_audio_ms" in row),
                         key=lambda row: -row.get("chunk_frames", 0))
        if peer_file is None:
            peer_file, peer_run = rows[peer[0][0]][:2]
        version = peer_run["versions"].get("faster-qwen3-tts", "?")
        lines = [f"## Same call: fast engine vs {PEER} {version} (call `{call}`)", "",
                 f"{ours_run['card']}; ours: `{ours_file}` "
                 f"(transformers {ours_run['versions'].get('transformers')}, qwen-tts "
                 f"{ours_run['versions'].get('qwen-tts')}), peer: `{peer_file}` (transformers "
                 f"{peer_run['versions'].get('transformers')}, qwen-tts-hf {peer_run['versions'].get('qwen-tts-hf')}), "
                 f"two processes one after the other on the same machine, same checkpoint, voice prompt, text and "
                 f"{fast['frames']} frames.", "",
                 f"| batch 1, bf16 | fast engine | {PEER} | fast vs peer |", "|---|---|---|---|"]
        if timed:
            lines += [f"| ms/frame (end to end) | {fast['ms_per_frame']:.2f} | {timed['ms_per_frame']:.2f} "
                      f"| {timed['ms_per_frame'] / fast['ms_per_frame']:.2f}x faster |",
                      f"| xRT | {fast['xrt_per_stream']:.2f} | {timed['xrt_per_stream']:.2f} | |",
                      f"| peak GB | {fast['peak_gb']:.2f} | {timed['peak_gb']:.2f} | |"]
        else:
            lines.append(f"| ms/frame (end to end) | {fast['ms_per_frame']:.2f} | failed | |")
        if stream:
            totals = ", ".join(f"{row['stream_total_s']:.2f} (chunk {row.get('chunk_frames')})" for row in streams)
            lines.append(f"| streaming, whole {fast['frames']}-frame stream, s | {stream['stream_total_s']:.2f} "
                         f"| {totals} | |")
        for row in streams:
            if stream:
                lines.append(f"| first audio ms, streaming (peer chunk {row.get('chunk_frames')} frames; ours "
                             f"2 frames) | {stream['first_audio_ms']:.1f} | {row['first_audio_ms']:.1f} "
                             f"| {row['first_audio_ms'] / stream['first_audio_ms']:.2f}x sooner |")
        sections.append("\n".join(lines))
    failed = [(name, row) for name, run in runs for row in run["rows"]
              if row.get("variant", "").startswith(PEER) and "error" in row]
    for name, row in failed:
        sections.append(f"{row['variant']} in `{name}` failed: `{row['error']}`")
    return "\n\n".join(sections)


def plot(runs: list[tuple[str, dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = [(row["variant"], Path(name).stem, row) for name, run in runs for row in run["rows"]
             if "ms_per_frame" in row]
    counts: dict[str, int] = {}
    for variant, _, _ in timed:
        counts[variant] = counts.get(variant, 0) + 1
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 0.6 + 0.42 * max(len(timed), 6)))
    names = [f"{variant}{f' [{stem}]' if counts[variant] > 1 else ''}\n({row['ms_per_frame']:.1f} ms/frame)"
             for variant, stem, row in timed]
    colours = ["tab:blue" if v.startswith(PEER) else "tab:green" if v.startswith("fast") else "tab:gray"
               for v, _, _ in timed]
    left.barh(names, [row["xrt_per_stream"] for _, _, row in timed], color=colours)
    left.axvline(10, color="tab:red", linestyle="--", label="goal: 10x")
    left.set_xscale("log")
    left.set_xlabel("real-time factor per stream (x, log)")
    left.tick_params(axis="y", labelsize=7)
    left.invert_yaxis()
    left.legend()
    by_run: dict[str, list[tuple[int, float]]] = {}
    for variant, stem, row in timed:
        if variant.startswith("fast b"):
            by_run.setdefault(stem, []).append((row["streams"], row["aggregate_audio_s_per_s"]))
    for stem, points in by_run.items():
        points.sort()
        right.plot([b for b, _ in points], [a for _, a in points], marker="o", label=f"fast engine [{stem}]")
    for variant, stem, row in timed:
        if variant.startswith(PEER):
            right.plot([row["streams"]], [row["aggregate_audio_s_per_s"]], marker="s", color="tab:blue",
                       linestyle="none", label=f"{PEER} (batch 1 only) [{stem}]")
    right.axhline(100, color="tab:red", linestyle="--", label="goal at 16 streams: 100")
    right.set_xlabel("concurrent streams (one batch)")
    right.set_ylabel("aggregate audio-seconds per second")
    right.legend(fontsize=7)
    figure.suptitle("Qwen3-TTS 1.7B shapes, bf16, 250 frames, H100 80GB HBM3")
    figure.tight_layout()
    figure.savefig(out, dpi=110)


def main() -> None:
    every = load_runs(HERE / "runs")
    runs = [(name, run) for name, run in every if "rows" in run and "rates" not in run]
    loads = [(name, run) for name, run in every if "rates" in run]
    coldstarts = [(name, run) for name, run in every if "scenarios" in run]
    header = (HERE / "RESULTS.head.md").read_text()
    footer = (HERE / "RESULTS.foot.md").read_text()
    comparison = same_call(runs)
    coldstart = (HERE / "RESULTS.coldstart.md").read_text().replace("{table}", coldstart_table(coldstarts))
    watermark = (HERE / "RESULTS.watermark.md").read_text()
    load = (HERE / "RESULTS.load.md").read_text().replace("{table}", load_table(loads))
    speak = (HERE / "RESULTS.speak.md").read_text()
    (HERE / "RESULTS.md").write_text(header + "\n" + table(runs) + "\n\n" + (comparison + "\n\n" if comparison else "")
                                     + footer + "\n" + coldstart + "\n" + watermark + "\n" + load + "\n" + speak)
    plot(runs, HERE / "results.png")
    print("wrote RESULTS.md and results.png", file=sys.stderr)


if __name__ == "__main__":
    main()
