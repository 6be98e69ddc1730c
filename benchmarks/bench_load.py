"""Serving under load: Poisson arrivals, mixed text lengths, half streaming; continuous batching against the
static batcher it replaced and one-at-a-time serving, side by side in one run on one engine.

Three servers share one loaded `Engine` (same weights, same CUDA graphs), so only the scheduling differs:

- continuous: the product path. Whole clips through `CloneBatcher` -> `Engine.clone_batch`, streams through
  `Engine.clone_stream`; every request joins the running decode at the next frame boundary.
- static (before): what the serving path did before continuous batching. Whole-clip requests that wait are
  gathered (`--window-ms`) into one static batch (`FastTTS.generate_voice_clone`, `FastDecoder.frames`) run to
  its longest row's end; a streaming request runs alone, as the old serving path never batched streams.
- one-at-a-time: faster-qwen3-tts's serving model: every request alone, in arrival order, on the same fast decoder.

Each request's text is one of 12/44/187/506 characters (the plan's lengths), mixed at random; every other
request streams. Audio length follows the text (`frames_for`, EOS suppressed, so random weights give fixed
lengths). Per server and arrival rate: p50/p95 first audio (streams: first chunk; whole clips: the clip), p50/p95
latency per text length, aggregate audio seconds per second, peak GPU memory. JSON, a Markdown table (RESULTS.md
rows) and, with matplotlib, a plot.

    python3 benchmarks/bench_load.py --checkpoint /tmp/voicebot-ckpt --rates 1,4,8,16 --requests 64 --out load.json

Before serving, every batch bucket is captured at the cache lengths the workload needs (`--lengths`; compiled
graphs, or `--graphs eager` for uncompiled ones in a fraction of the time), so no request waits for a compile.
Then the costs a scheduler works with are measured once (`micro`): a frame per batch bucket, staging a prompt,
decoding and watermarking a stream chunk, decoding a whole clip. Every continuous run also reports where the
decode loop's time went (`ContinuousBatch.stats`: joining, stepping, looking; rows per step). `--budget-s` stops
starting runs once that much time has passed, so a time-limited device call still writes what it measured.
    python3 benchmarks/bench_load.py --preset tiny --device cpu --rates 2,4 --requests 4 --out /tmp/load.json
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.audio import to_wav
from backend.batcher import CloneBatcher
from backend.engine import Engine
from backend.engine.fast.tts import SAMPLES_PER_FRAME, STREAM_CHUNKS
from backend.schema import SAMPLE_RATE, CloneRequest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, however this file is loaded
from bench_common import bench_engine, engine_parser, log  # noqa: E402
from load_costs import capture_shapes, loop_profile, micro  # noqa: E402

REF_TEXT = "This is the reference voice."
BASE = ("The quick brown fox jumps over the lazy dog while the band plays on, and everyone in the square stops to "
        "listen to the music drifting through the warm evening air. ")
LENGTHS = (12, 44, 187, 506)
SERVERS = ("continuous", "static", "one-at-a-time")
FRAMES_PER_CHAR = 0.85  # ~15 characters per second of speech, 12.5 frames per second


def text_of(length: int) -> str:
    return (BASE * (length // len(BASE) + 1))[:length].strip() or "Hi."


def frames_for(length: int, scale: float) -> int:
    """Frames a text of `length` characters takes spoken (times `scale`: smoke runs shorten every clip)."""
    return max(2, round((8 + length * FRAMES_PER_CHAR) * scale))


@dataclass
class Arrival:
    at: float  # seconds after the run's start
    length: int
    stream: bool
    frames: int


@dataclass
class Outcome:
    length: int
    stream: bool
    arrived: float
    first_audio: float = 0.0
    done: float = 0.0
    audio_s: float = 0.0
    error: str | None = None


def workload(rate: float, count: int, seed: int, scale: float) -> list[Arrival]:
    """Poisson arrivals at `rate` per second; lengths mixed uniformly; every other request streams."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.exponential(1.0 / rate, count))
    lengths = rng.choice(LENGTHS, count)
    return [Arrival(float(t), int(n), i % 2 == 1, frames_for(int(n), scale))
            for i, (t, n) in enumerate(zip(times, lengths, strict=True))]


def request_for(arrival: Arrival, clip: bytes) -> CloneRequest:
    return CloneRequest(reference=clip, ref_text=REF_TEXT, text=text_of(arrival.length), language="English",
                        max_new_tokens=arrival.frames + 1)


# -- the servers: each turns a request into (first audio time, done time, audio seconds) ---------------------
Serve = Callable[[CloneRequest, bool], tuple[float, float]]  # -> (first audio, audio seconds); blocking


def continuous_server(engine: Engine) -> tuple[Serve, Callable[[], None]]:
    batcher = CloneBatcher.for_engine(engine, timeout_s=3600)

    def serve(request: CloneRequest, stream: bool) -> tuple[float, float]:
        if not stream:
            result = batcher.clone_blocking(request)
            return time.perf_counter(), result.audio_seconds
        return consume(engine.clone_stream(request))

    return serve, lambda: None


def consume(chunks: Iterator[np.ndarray]) -> tuple[float, float]:
    first, samples = 0.0, 0
    for chunk in chunks:
        first = first or time.perf_counter()
        samples += chunk.size
    return first, samples / SAMPLE_RATE


class _Queued:
    def __init__(self, request: CloneRequest, stream: bool) -> None:
        self.request, self.stream = request, stream
        self.future: Future[tuple[float, float]] = Future()
        self.first = 0.0


def queued_server(engine: Engine, *, batch: bool, window_s: float) -> tuple[Serve, Callable[[], None]]:
    """One worker owns the engine's fast decoder: `batch` gathers waiting whole-clip requests into one static
    batch (the old static batcher); without it every request runs alone (one-at-a-time serving)."""
    fast = engine._fast
    waiting: queue.Queue[_Queued | None] = queue.Queue()

    def prepared(request: CloneRequest) -> Any:
        return engine._prepare(*engine._check(request))

    def run_alone_streaming(job: _Queued) -> None:
        item = prepared(job.request)
        inputs, settings = fast.talker_inputs([item.text], ["english"], [item.prompt],
                                              max_new_tokens=item.max_new_tokens)
        frames = 0
        for chunk in fast.decoder.frames(inputs, settings, chunks=STREAM_CHUNKS):
            (wav,), _ = fast.codes_to_wavs([chunk[0]], [item.prompt])  # each chunk decoded as it arrives
            job.first = job.first or time.perf_counter()
            frames += chunk.shape[1]
        job.future.set_result((job.first, frames * SAMPLES_PER_FRAME / SAMPLE_RATE))

    def run_batch(jobs: list[_Queued]) -> None:
        items = [prepared(job.request) for job in jobs]
        wavs, _ = fast.generate_voice_clone([i.text for i in items], ["english"] * len(items),
                                            [i.prompt for i in items],
                                            max_new_tokens=max(i.max_new_tokens for i in items))
        done = time.perf_counter()
        for job, item, wav in zip(jobs, items, wavs, strict=True):
            _, frames, _ = engine._marked_clip(wav, item.max_new_tokens)
            job.future.set_result((done, frames * SAMPLES_PER_FRAME / SAMPLE_RATE))

    def work() -> None:
        while (job := waiting.get()) is not None:
            try:
                if job.stream:
                    run_alone_streaming(job)
                    continue
                jobs = [job]
                deadline = time.perf_counter() + window_s
                while batch and len(jobs) < fast.decoder.max_batch:
                    try:
                        more = waiting.get(timeout=max(0.0, deadline - time.perf_counter()))
                    except queue.Empty:
                        break
                    if more is None or more.stream:
                        waiting.put(more)  # after this batch (a stream, or the end)
                        break
                    jobs.append(more)
                run_batch(jobs)
            except Exception as error:  # noqa: BLE001 - the benchmark records it
                job.future.set_exception(error)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()

    def serve(request: CloneRequest, stream: bool) -> tuple[float, float]:
        job = _Queued(request, stream)
        waiting.put(job)
        return job.future.result()

    def close() -> None:
        waiting.put(None)
        worker.join()

    return serve, close


def make_server(name: str, engine: Engine, window_s: float) -> tuple[Serve, Callable[[], None]]:
    if name == "continuous":
        return continuous_server(engine)
    return queued_server(engine, batch=name == "static", window_s=window_s)


# -- one run -------------------------------------------------------------------------------------------------
def drive(serve: Serve, arrivals: list[Arrival], clip: bytes) -> tuple[list[Outcome], float]:
    """Send each request at its arrival time from its own thread; wait for all. Returns outcomes and the wall
    time from the first arrival to the last answer."""
    outcomes = [Outcome(a.length, a.stream, 0.0) for a in arrivals]
    start = time.perf_counter()

    def one(index: int, arrival: Arrival) -> None:
        outcome = outcomes[index]
        outcome.arrived = time.perf_counter()
        try:
            first, audio_s = serve(request_for(arrival, clip), arrival.stream)
            outcome.first_audio, outcome.audio_s = first - outcome.arrived, audio_s
        except Exception as error:  # noqa: BLE001 - counted in the row
            outcome.error = repr(error)[:200]
        outcome.done = time.perf_counter() - outcome.arrived
        if not arrival.stream:
            outcome.first_audio = outcome.done

    with ThreadPoolExecutor(max_workers=len(arrivals)) as pool:
        for index, arrival in enumerate(arrivals):
            time.sleep(max(0.0, start + arrival.at - time.perf_counter()))
            pool.submit(one, index, arrival)
    return outcomes, max(o.arrived + o.done for o in outcomes) - min(o.arrived for o in outcomes)


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarise(server: str, rate: float, outcomes: list[Outcome], wall_s: float, peak_gb: float) -> dict[str, Any]:
    good = [o for o in outcomes if o.error is None]
    streams = [o.first_audio for o in good if o.stream]
    row: dict[str, Any] = dict(
        server=server, rate=rate, requests=len(outcomes), errors=len(outcomes) - len(good), wall_s=wall_s,
        first_audio_p50_ms=_ms(percentile(streams, 50)), first_audio_p95_ms=_ms(percentile(streams, 95)),
        aggregate_audio_s_per_s=sum(o.audio_s for o in good) / wall_s if wall_s > 0 else 0.0, peak_gb=peak_gb,
        latency_ms={})
    for length in LENGTHS:
        done = [o.done for o in good if o.length == length]
        row["latency_ms"][str(length)] = dict(p50=_ms(percentile(done, 50)), p95=_ms(percentile(done, 95)),
                                              n=len(done))
    row["errors_seen"] = sorted({o.error for o in outcomes if o.error})[:3]
    return row


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def solo_latency(serve: Serve, clip: bytes, scale: float) -> dict[str, float]:
    """Each length alone, whole clip, the second of two calls (the first warms up): the reference for "under
    load within 2x of solo"; and the first audio of a lone short stream."""
    solo = {}
    for length in LENGTHS:
        request = request_for(Arrival(0.0, length, False, frames_for(length, scale)), clip)
        for _ in range(2):
            started = time.perf_counter()
            serve(request, False)
        solo[str(length)] = round((time.perf_counter() - started) * 1000, 1)
    stream = request_for(Arrival(0.0, LENGTHS[1], True, frames_for(LENGTHS[1], scale)), clip)
    for _ in range(2):
        started = time.perf_counter()
        first, _ = serve(stream, True)
    solo["stream_first_audio"] = round((first - started) * 1000, 1)
    return solo


def markdown(result: dict[str, Any]) -> str:
    """RESULTS.md rows: one per server and rate."""
    lines = [f"Card: {result['card']}; command: `{result['command']}`", "",
             "| server | rate/s | first audio p50/p95 ms | " + " | ".join(
                 f"{n} ch p50/p95 ms" for n in LENGTHS) + " | audio-s/s | peak GB | errors |",
             "|---" * (6 + len(LENGTHS)) + "|"]
    for row in result["rows"]:
        cells = [f"{row['latency_ms'][str(n)]['p50']}/{row['latency_ms'][str(n)]['p95']}" for n in LENGTHS]
        lines.append(f"| {row['server']} | {row['rate']:g} | {row['first_audio_p50_ms']}/{row['first_audio_p95_ms']} "
                     f"| " + " | ".join(cells) + f" | {row['aggregate_audio_s_per_s']:.1f} | {row['peak_gb']:.2f} "
                     f"| {row['errors']} |")
    lines.append("")
    lines.append("Solo latency (whole clip, ms): " + ", ".join(f"{n} ch {ms}" for n, ms in result["solo_ms"].items()))
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed: no plot")
        return
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for server in SERVERS:
        rows = [r for r in result["rows"] if r["server"] == server]
        if not rows:
            continue
        rates = [r["rate"] for r in rows]
        axes[0].plot(rates, [r["first_audio_p95_ms"] or 0 for r in rows], marker="o", label=server)
        axes[1].plot(rates, [r["latency_ms"][str(LENGTHS[0])]["p95"] or 0 for r in rows], marker="o", label=server)
        axes[2].plot(rates, [r["aggregate_audio_s_per_s"] for r in rows], marker="o", label=server)
    for axis, title in zip(axes, ("p95 first audio (ms)", f"p95 latency, {LENGTHS[0]} chars (ms)",
                                  "aggregate audio-s/s"), strict=True):
        axis.set_title(title)
        axis.set_xlabel("arrivals per second")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path)


def run(args: argparse.Namespace) -> dict[str, Any]:
    cuda = args.device.startswith("cuda")
    engine = bench_engine(args, "load-bench", fast_capture="lazy", fast_max_batch=args.max_batch)
    started = time.perf_counter()
    log(f"loading the engine (fast decoder, capture {engine.config.fast_capture})")
    engine.load()
    lengths = [int(n) for n in args.lengths.split(",")]
    if cuda:
        log(f"capturing every batch bucket at cache lengths {lengths} ({args.graphs})")
        capture_s = capture_shapes(engine, lengths, compiled=args.graphs == "compiled")
        log(f"captured in {capture_s:.1f} s: {engine._fast.decoder.graph_status()}")
    engine.tts.model.config.talker_config.codec_eos_token_id = 10**6  # fixed lengths: EOS never sampled
    clip = to_wav((0.1 * np.random.default_rng(0).standard_normal(SAMPLE_RATE * 3)).astype(np.float32), SAMPLE_RATE)
    rates = [float(r) for r in args.rates.split(",")]
    servers = [s for s in args.servers.split(",") if s]
    result: dict[str, Any] = dict(
        card=torch.cuda.get_device_name() if cuda else "cpu", date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=" ".join(sys.argv), preset=args.preset, rates=rates, requests=args.requests,
        frame_scale=args.frame_scale, max_batch=args.max_batch, rows=[],
        workload=[asdict(a) for a in workload(rates[0], min(args.requests, 8), args.seed, args.frame_scale)],
        graphs=args.graphs, lengths=lengths, micro=micro(engine, request_for(Arrival(0.0, 187, False, 160), clip), lengths[1 if len(lengths) > 1 else 0]))
    log(f"costs: {result['micro']}")
    args.out.write_text(json.dumps(result, indent=2))
    batch = engine._fast.batch
    for name in servers:
        serve, close = make_server(name, engine, args.window_ms / 1000)
        try:
            if name == "continuous":
                result["solo_ms"] = solo_latency(serve, clip, args.frame_scale)  # also the warm-up
                log(f"solo: {result['solo_ms']}")
            for rate in rates:
                if time.perf_counter() - started > args.budget_s:
                    log(f"past the {args.budget_s:g} s budget: {name} at {rate:g}/s not run")
                    continue
                requests = args.requests if name == "continuous" else args.baseline_requests or args.requests
                arrivals = workload(rate, requests, args.seed, args.frame_scale)
                if cuda:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                before = batch.stats()
                outcomes, wall_s = drive(serve, arrivals, clip)
                peak = torch.cuda.max_memory_allocated() / 1024**3 if cuda else 0.0
                row = summarise(name, rate, outcomes, wall_s, peak)
                if name == "continuous":
                    row["loop"] = loop_profile(before, batch.stats(), wall_s)
                log(f"{name} at {rate:g}/s: first audio p95 {row['first_audio_p95_ms']} ms, "
                    f"{row['aggregate_audio_s_per_s']:.1f} audio-s/s, errors {row['errors']}, loop {row.get('loop')}")
                result["rows"].append(row)
                args.out.write_text(json.dumps(result, indent=2))
        finally:
            close()
    result.setdefault("solo_ms", {})
    args.out.write_text(json.dumps(result, indent=2))
    args.out.with_suffix(".md").write_text(markdown(result) + "\n")
    plot(result, args.out.with_suffix(".png"))
    return result


def parser() -> argparse.ArgumentParser:
    options = engine_parser(__doc__.splitlines()[0])
    options.add_argument("--rates", default="1,4,8,16", help="Poisson arrival rates, requests per second")
    options.add_argument("--requests", type=int, default=64, help="requests per rate and server")
    options.add_argument("--servers", default=",".join(SERVERS))
    options.add_argument("--max-batch", type=int, default=16)
    options.add_argument("--window-ms", type=float, default=5.0, help="the static batcher's gather window")
    options.add_argument("--frame-scale", type=float, default=1.0, help="multiplies every clip's length")
    options.add_argument("--seed", type=int, default=0)
    options.add_argument("--graphs", default="compiled", choices=("compiled", "eager"),
                         help="how every batch bucket is captured before serving")
    options.add_argument("--lengths", default="256,512,768,1024",
                         help="cache lengths captured per bucket: enough for the workload's longest request")
    options.add_argument("--baseline-requests", type=int, default=0,
                         help="requests per rate for the static and one-at-a-time servers (default: --requests)")
    options.add_argument("--budget-s", type=float, default=float("inf"),
                         help="start no run once this many seconds have passed (results so far are written)")
    options.add_argument("--compile-cache", type=Path, default=None, help="torch.compile artifacts to reuse")
    options.add_argument("--out", type=Path, default=Path("load.json"))
    return options


def main() -> None:
    run(parser().parse_args())


if __name__ == "__main__":
    main()
