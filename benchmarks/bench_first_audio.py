"""Where a stream's first audio goes, phase by phase: one stream alone and N started at once, for each depth the
decode loop may run ahead of the GPU (`backend.engine.fast.pacing`).

Each stream is the product's `Engine.clone_stream` (the continuous batch), timed from the call to its first
watermarked chunk. The phases come from the engine's own stamps (`DecodeJob`: prompt assembled and queued,
prefilled into a slot, first codes handed on; the speech decoder's first audio) and, for the lone stream, from
wrapping the engine's steps (check, voice prompt, talker inputs, prefill, join, speech decode, watermark): what
found that a lone stream's codes were ready after 30 ms and its audio came after 420 ms. Per depth it also runs
16 whole clips of 150 frames at once, so a depth that starves the GPU shows as fewer frames a second.

Random weights never end a clip; EOS is disabled, every stream runs `--frames` frames. Batch 1 is compiled at
load; every other batch bucket is captured uncompiled before measuring (no compile mid-run).

    python3 benchmarks/bench_first_audio.py --out runs/h200-first-audio.json
    python3 benchmarks/bench_first_audio.py --preset tiny --device cpu --streams 1,2 --depths 2 --frames 8
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.audio import to_wav
from backend.engine import Engine
from backend.engine.fast import tts as fast_tts
from backend.schema import SAMPLE_RATE, CloneRequest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, however this file is loaded
from bench_common import REF_TEXT, bench_engine, engine_parser, log  # noqa: E402
from load_costs import capture_shapes  # noqa: E402

TEXT = "Hello everyone, this is the bot speaking in your channel."
STEPS = ("check", "prepare", "talker_inputs", "stage", "join", "take", "speech", "mark")


class Stamps:
    """Wraps the engine's steps to note when each began and ended (ms from `start`), on any thread."""

    def __init__(self, engine: Engine) -> None:
        self.started = 0.0
        self.events: list[tuple[str, float]] = []
        fast = engine._fast
        targets = dict(check=(engine, "_check"), prepare=(engine, "_prepare"), talker_inputs=(fast, "talker_inputs"),
                       stage=(fast.decoder, "stage"), join=(fast.decoder, "join"), take=(fast.batch, "_take"),
                       speech=(fast.speech, "decode"), mark=(engine._get_watermarker(), "mark"))
        for name, (owner, attribute) in targets.items():
            setattr(owner, attribute, self._wrap(name, getattr(owner, attribute)))

    def _wrap(self, name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def stamped(*args: Any, **kwargs: Any) -> Any:
            self.events.append((f"{name} began", self._ms()))
            try:
                return fn(*args, **kwargs)
            finally:
                self.events.append((f"{name} ended", self._ms()))
        return stamped

    def _ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 1)

    def start(self) -> None:
        self.events.clear()
        self.started = time.perf_counter()

    def first_of_each(self) -> dict[str, float]:
        """Each step's first begin and end: the path to the first chunk."""
        first: dict[str, float] = {}
        for what, ms in self.events:
            first.setdefault(what, ms)
        return first


class JobPhases:
    """The engine's per-stream stamps (`fast.stream`'s log), ms from the call: queued, joined, first codes,
    first audio decoded."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, ...]] = []
        original = fast_tts._log_stream

        def kept(job: Any, started: float, first_audio: float) -> None:
            self.rows.append(tuple(round((at - started) * 1000, 1) if at else float("nan")
                                   for at in (job.queued, job.joined, job.first_chunk, first_audio)))
            original(job, started, first_audio)

        fast_tts._log_stream = kept


def percentiles(values: list[float]) -> dict[str, float]:
    return dict(p50=round(float(np.percentile(values, 50)), 1), p95=round(float(np.percentile(values, 95)), 1))


def first_audio(engine: Engine, request: CloneRequest) -> float:
    """Ms from the call to the first chunk; the rest of the stream is drained."""
    started = time.perf_counter()
    chunks = engine.clone_stream(request)
    next(chunks)
    ms = (time.perf_counter() - started) * 1000
    for _ in chunks:
        pass
    return ms


def at_once(engine: Engine, request: CloneRequest, count: int, phases: JobPhases) -> dict[str, Any]:
    """`count` streams started together: first audio and the engine's phases, p50/p95."""
    phases.rows.clear()
    firsts: list[float] = []
    threads = [threading.Thread(target=lambda: firsts.append(first_audio(engine, request))) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    columns = list(zip(*phases.rows))
    names = ("queued", "joined", "first_codes", "engine_first_audio")
    return dict(first_audio_ms=percentiles(firsts),
                phases_ms={name: percentiles(list(column)) for name, column in zip(names, columns)})


def whole_clips(engine: Engine, request: CloneRequest, count: int, frames: int) -> float:
    """Frames a second of `count` whole clips decoded at once through the continuous batch."""
    prepared = engine._prepare(*engine._check(request))
    started = time.perf_counter()
    jobs = [engine._fast.submit(prepared.text, "english", prepared.prompt, max_new_tokens=frames + 1)
            for _ in range(count)]
    for job in jobs:
        job.future.result()
    return round(count * frames / (time.perf_counter() - started), 1)


def run(args: Any) -> dict[str, Any]:
    cuda = args.device.startswith("cuda")
    engine = bench_engine(args, "first-audio-bench", fast_capture="lazy", fast_max_batch=args.max_batch)
    log("loading the engine")
    engine.load()
    if cuda:
        log(f"captured the other buckets uncompiled in {capture_shapes(engine, [256, 512], compiled=False):.1f} s")
    engine.tts.model.config.talker_config.codec_eos_token_id = 10**6  # fixed lengths: EOS never sampled
    clip = to_wav((0.1 * np.random.default_rng(0).standard_normal(SAMPLE_RATE * 3)).astype(np.float32), SAMPLE_RATE)
    request = CloneRequest(reference=clip, ref_text=REF_TEXT, text=TEXT, language="English",
                           max_new_tokens=args.frames + 1)
    stamps, phases = Stamps(engine), JobPhases()
    for _ in range(2):  # warm-up: voice prompt cached, first-use costs paid
        first_audio(engine, request)
    result: dict[str, Any] = dict(
        card=torch.cuda.get_device_name() if cuda else "cpu", date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command=" ".join(sys.argv), preset=args.preset, frames=args.frames, max_batch=args.max_batch, depths={})
    for depth in (int(d) for d in args.depths.split(",")):
        engine._fast.batch.pacer.depth = depth
        lone = []
        for _ in range(args.repeats):
            stamps.start()
            lone.append(first_audio(engine, request))
        row = dict(lone_first_audio_ms=dict(percentiles(lone), max=round(max(lone), 1)),
                   lone_steps_ms=stamps.first_of_each(),
                   at_once={n: at_once(engine, request, int(n), phases) for n in args.streams.split(",")},
                   whole_clips_frames_per_s=whole_clips(engine, request, args.max_batch, args.frames))
        result["depths"][str(depth)] = row
        log(f"depth {depth}: lone first audio p50 {row['lone_first_audio_ms']['p50']} ms; at once: "
            + ", ".join(f"{n} -> {r['first_audio_ms']}" for n, r in row["at_once"].items())
            + f"; whole clips {row['whole_clips_frames_per_s']} frames/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    log(f"wrote {args.out}")
    return result


def parser() -> Any:
    options = engine_parser(__doc__.split("\n")[0])
    options.add_argument("--max-batch", type=int, default=16)
    options.add_argument("--frames", type=int, default=60, help="frames per stream")
    options.add_argument("--streams", default="1,4,16", help="streams started at once, per measurement")
    options.add_argument("--depths", default="64,2,1,3", help="frames the loop may run ahead (64: unbounded)")
    options.add_argument("--repeats", type=int, default=5)
    options.add_argument("--compile-cache", type=Path)
    options.add_argument("--out", type=Path, default=Path("first-audio.json"))
    return options


if __name__ == "__main__":
    run(parser().parse_args())
