"""The serving path on a GPU: N concurrent clone requests through `LocalBackend` -> `CloneBatcher` -> `Engine`.

bench_gpu.py times the fast decoder directly; this times what a Modal container or a local bot actually runs:
the production `Engine` (engine_mode auto, every batch bucket warmed at load, KV caches sized for the longest
request) with requests arriving concurrently and grouped by the batcher. Each request has its own reference
clip (its own voice prompt), 250 frames (EOS suppressed). Rows use bench_gpu.py's shape, so report.py lists them.

    python3 benchmarks/bench_serving.py --checkpoint /tmp/voicebot-ckpt --out serving.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from backend.audio import to_wav
from backend.clients.local import LocalBackend
from backend.engine import Engine, EngineConfig
from backend.engine.checkpoint import build_random_checkpoint, is_checkpoint
from backend.schema import FRAME_SECONDS, CloneRequest
from backend.settings import BackendSettings

REF_TEXT = "This is the reference voice."
TEXT = ("The fast engine turns each voice clone request into one batched generation, so many users can share "
        "one GPU without waiting in line for each other.")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def references(count: int) -> list[bytes]:
    """`count` different 3 s clips, so every request builds (then caches) its own voice prompt."""
    return [to_wav((0.1 * np.random.default_rng(seed).standard_normal(24_000 * 3)).astype(np.float32), 24_000)
            for seed in range(count)]


async def burst(backend: LocalBackend, clips: list[bytes], frames: int) -> tuple[float, list]:
    """Send every request at once; wall time until the last result."""
    started = time.perf_counter()
    results = await asyncio.gather(*(
        backend.clone(CloneRequest(reference=clip, ref_text=REF_TEXT, text=TEXT, language="English",
                                   max_new_tokens=frames + 1))
        for clip in clips))
    return time.perf_counter() - started, results


async def run(args: argparse.Namespace) -> dict:
    path = args.checkpoint / "1.7b"
    if not is_checkpoint(path):
        log("building the 1.7b checkpoint on the GPU")
        build_random_checkpoint("1.7b", path, device="cuda")
    cuda = args.device.startswith("cuda")
    config = EngineConfig(model=str(path), variant="serving-bench", attention="sdpa",
                          dtype="bfloat16" if cuda else "float32", device=args.device, engine_mode="auto",
                          fast_capture="all")
    engine = Engine(config)
    log("loading the engine (fast decoder, every batch bucket captured)")
    engine.load()
    health = engine.health()
    log(f"loaded in {health.load_s:.1f} s, engine_mode={health.engine_mode}, fallback={health.fallback_reason}")
    engine.tts.model.config.talker_config.codec_eos_token_id = 10**6  # fixed length: EOS never sampled
    backend = LocalBackend(BackendSettings(model=str(path)), engine=engine)
    result = dict(card=torch.cuda.get_device_name() if cuda else "cpu",
                  date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  command=" ".join(sys.argv), frames=args.frames, repeats=args.repeats, load_s=health.load_s,
                  engine_mode=health.engine_mode, fallback_reason=health.fallback_reason,
                  versions=health.versions, rows=[])
    for streams in [int(n) for n in args.concurrency.split(",")]:
        clips = references(streams)
        await burst(backend, clips, args.frames)  # warm-up: voice prompts built and cached
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        times, batch_sizes, queue_s = [], set(), []
        for _ in range(args.repeats):
            wall, results = await burst(backend, clips, args.frames)
            times.append(wall)
            batch_sizes |= {r.batch_size for r in results}
            queue_s += [r.timings.queue_s for r in results]
            assert all(r.frames == args.frames for r in results), [r.frames for r in results]
        wall = statistics.median(times)
        row = dict(variant=f"serving b{streams}", streams=streams, frames=args.frames, wall_s=wall, times_s=times,
                   ms_per_frame=wall / args.frames * 1000, xrt_per_stream=args.frames * FRAME_SECONDS / wall,
                   aggregate_audio_s_per_s=streams * args.frames * FRAME_SECONDS / wall,
                   peak_gb=torch.cuda.max_memory_allocated() / 1e9 if cuda else 0.0, batch_sizes=sorted(batch_sizes),
                   median_queue_ms=statistics.median(queue_s) * 1000)
        log(f"{row['variant']}: {wall:.2f} s, {row['aggregate_audio_s_per_s']:.1f} audio-s/s, batches "
            f"{row['batch_sizes']}, peak {row['peak_gb']:.2f} GB")
        result["rows"].append(row)
        args.out.write_text(json.dumps(result, indent=2))
    await backend.aclose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("/tmp/voicebot-ckpt"))
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("serving.json"))
    parser.add_argument("--device", default="cuda:0", help="cpu: a smoke test on a tiny checkpoint named 1.7b")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
