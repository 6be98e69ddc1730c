"""`voicebot bench`: the deployment plan's A/B comparison as one command, against any backends side by side.

For each target (the local engine, a deployed Modal variant, an HTTP endpoint) it makes one cold call, then
warm repeats at the plan's four text lengths, and records the client-side wall time next to the backend's
own timings. Results go to JSON (every call) and a PNG (median warm time and real-time factor per length).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.table import Table

from backend.clients.base import BackendClient
from backend.clients.factory import create_backend
from backend.schema import CloneRequest
from backend.settings import BackendSettings

# The plan's generation-only test lengths (tiny 12, short 44, medium 187, long 506 characters).
PLAN_TEXTS: dict[str, str] = {
    "tiny": "Hello there.",
    "short": "The quick brown fox jumps over the lazy dog.",
    "medium": (
        "Voice cloning takes a short reference clip and speaks new text in the same voice. This benchmark "
        "measures how long the backend needs for every length of text, warm and cold, side by side."
    ),
    "long": (
        "Once upon a time, in a small village at the edge of a great forest, there lived an old clockmaker "
        "who repaired every clock in the valley. Each morning he opened his shop at seven, swept the floor, "
        "and listened to the ticking of a hundred clocks at once. Travellers said the sound was like rain on "
        "a tin roof. One winter a stranger arrived with a clock that had no hands, and asked him to make it "
        "tell the time again. The clockmaker smiled, took out his smallest screwdriver, and calmly began to work on it."
    ),
}


@dataclass
class BenchCall:
    """One measured call."""

    target: str
    length: str
    chars: int
    run: str  # "cold" (first call of a target) or "warm"
    wall_s: float
    backend_total_s: float
    generate_s: float
    audio_seconds: float
    real_time_factor: float
    engine_mode: str  # as the backend reports it: "fast" or "stock"
    attention: str


LOCAL_OPTIONS = {"sdpa": "attention", "eager": "attention", "flash_attention_2": "attention",
                 "stock": "engine_mode", "fast": "engine_mode", "auto": "engine_mode"}


def target_settings(target: str, base: BackendSettings) -> tuple[BackendSettings, str | None]:
    """Parse `local[:option,...]` (attention and/or engine mode), `modal:<variant>` or `http:<url>` into
    settings and a Modal variant."""
    kind, _, arg = target.partition(":")
    if kind == "local":
        update: dict[str, str] = {"backend": "local"}
        for option in filter(None, arg.split(",")):
            if option not in LOCAL_OPTIONS:
                raise ValueError(f"unknown local option {option!r} in {target!r}: use {', '.join(LOCAL_OPTIONS)}")
            update[LOCAL_OPTIONS[option]] = option
        return base.model_copy(update=update), None
    if kind == "modal":
        return base.model_copy(update={"backend": "modal"}), arg or base.modal_variants[0]
    if kind == "http":
        return base.model_copy(update={"backend": "http", "http_url": arg or base.http_url}), None
    raise ValueError(f"unknown bench target {target!r}: use local[:option,...], modal:<variant> or http:<url>")


def default_targets(settings: BackendSettings) -> list[str]:
    """Every configured Modal variant side by side, else the one configured backend."""
    if settings.backend == "modal":
        return [f"modal:{variant}" for variant in settings.modal_variants]
    if settings.backend == "http":
        return [f"http:{settings.http_url}"]
    return ["local"]


def load_reference(path: Path | None) -> bytes:
    """The clip every call clones (checked like a bot upload), or the demo's synthetic clip."""
    from bot.demo import demo_reference
    from backend.intake import read_reference

    return read_reference(path.read_bytes(), filename=path.name).wav if path else demo_reference()


async def _measure(client: BackendClient, target: str, length: str, text: str, run: str,
                   reference: bytes, seed: int) -> BenchCall:
    started = time.perf_counter()
    result = await client.clone(CloneRequest(reference=reference, text=text, language="English", seed=seed))
    wall = time.perf_counter() - started
    return BenchCall(target, length, len(text), run, wall, result.timings.total_s, result.timings.generate_s,
                     result.audio_seconds, wall / result.audio_seconds if result.audio_seconds else float("inf"),
                     result.engine_mode, result.attention)


async def run_bench(targets: list[str], reference: bytes, *, repeats: int = 3, lengths: list[str] | None = None,
                    base: BackendSettings | None = None, seed: int = 0,
                    on_call: Callable[[BenchCall], None] = lambda _call: None) -> list[BenchCall]:
    """Cold call, then `repeats` warm calls per length, for each target in turn (targets never overlap)."""
    base = base or BackendSettings()
    chosen = lengths or list(PLAN_TEXTS)
    calls: list[BenchCall] = []
    for target in targets:
        settings, variant = target_settings(target, base)
        client = create_backend(settings, variant)
        try:
            plan = [(chosen[0], "cold")] + [(length, "warm") for length in chosen for _ in range(repeats)]
            for length, run in plan:
                call = await _measure(client, target, length, PLAN_TEXTS[length], run, reference, seed)
                calls.append(call)
                on_call(call)
        finally:
            await client.aclose()
    return calls


def summarize(calls: list[BenchCall]) -> list[dict]:
    """Median warm wall time and real-time factor per target and length."""
    groups: dict[tuple[str, str], list[BenchCall]] = {}
    for call in calls:
        if call.run == "warm":
            groups.setdefault((call.target, call.length), []).append(call)
    return [
        {"target": target, "length": length, "chars": group[0].chars, "runs": len(group),
         "median_wall_s": statistics.median(c.wall_s for c in group),
         "median_rtf": statistics.median(c.real_time_factor for c in group),
         "engine_mode": group[0].engine_mode, "attention": group[0].attention}
        for (target, length), group in groups.items()
    ]


def summary_table(calls: list[BenchCall]) -> Table:
    """The summary for the terminal: one row per target and length, plus each target's cold call."""
    table = Table(title="Median of the warm calls (wall time seen by the client)")
    for column in ("target", "engine", "length", "chars", "runs", "wall", "RTF", "cold call"):
        table.add_column(column)
    cold = {call.target: call.wall_s for call in calls if call.run == "cold"}
    for row in summarize(calls):
        table.add_row(row["target"], f"{row['engine_mode']}/{row['attention']}", row["length"], str(row["chars"]),
                      str(row["runs"]), f"{row['median_wall_s']:.2f} s", f"{row['median_rtf']:.2f}",
                      f"{cold[row['target']]:.2f} s" if row["target"] in cold else "")
    return table


def write_results(calls: list[BenchCall], out_dir: Path) -> tuple[Path, Path]:
    """`bench.json` (every call + summary) and `bench.png` (two panels: time and RTF per length)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(calls)
    json_path = out_dir / "bench.json"
    json_path.write_text(json.dumps({"calls": [asdict(c) for c in calls], "summary": summary}, indent=2))
    figure, (time_ax, rtf_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for target in dict.fromkeys(row["target"] for row in summary):
        rows = [row for row in summary if row["target"] == target]
        chars = [row["chars"] for row in rows]
        time_ax.plot(chars, [row["median_wall_s"] for row in rows], marker="o", label=target)
        rtf_ax.plot(chars, [row["median_rtf"] for row in rows], marker="o", label=target)
    time_ax.set(xlabel="text length (characters)", ylabel="median warm wall time (s)", title="Time per request")
    rtf_ax.set(xlabel="text length (characters)", ylabel="real-time factor (lower is faster)",
               title="Real-time factor")
    rtf_ax.axhline(1.0, color="grey", linestyle="--", linewidth=0.8)
    for axis in (time_ax, rtf_ax):
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    png_path = out_dir / "bench.png"
    figure.savefig(png_path, dpi=120)
    plt.close(figure)
    return json_path, png_path


def bench(targets: list[str], reference: bytes, out_dir: Path, **kwargs) -> tuple[list[BenchCall], Path, Path]:
    """Synchronous wrapper for the CLI."""
    calls = asyncio.run(run_bench(targets, reference, **kwargs))
    return (calls, *write_results(calls, out_dir))
