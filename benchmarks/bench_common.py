"""What every GPU benchmark script shares: the text and transcript they speak, and GPU-aware timing helpers.

Imports only torch, so bench_peer.py (its own Python path, without the stock qwen-tts) can use it too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import time
from pathlib import Path

import torch

FRAME_S = 0.08
TEXT = ("The quick brown fox jumps over the lazy dog while the band plays on, and everyone in the square "
        "stops to listen to the music drifting through the warm evening air.")
REF_TEXT = "This is the reference clip, read slowly and clearly."


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def sync() -> None:
    """Wait for the GPU (the scripts also run on the CPU with the tiny preset, to check them before a lease)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peak_gb() -> float:
    return torch.cuda.max_memory_allocated() / 1024**3 if torch.cuda.is_available() else 0.0


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of `packages` (those missing are left out), for the run's JSON."""
    found = {}
    for name in packages:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def checkpoint_parser(description: str) -> argparse.ArgumentParser:
    """The options of a script that loads the project's random-weight checkpoint: which preset, where."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--preset", default="1.7b")
    parser.add_argument("--checkpoint", type=Path, default=Path("/tmp/voicebot-ckpt"))
    return parser


def engine_parser(description: str) -> argparse.ArgumentParser:
    """`checkpoint_parser` plus the device, for the scripts that run the product's `Engine`."""
    parser = checkpoint_parser(description)
    parser.add_argument("--device", default="cuda:0", help="cpu: a smoke test (with --preset tiny)")
    return parser


def random_checkpoint(folder: Path, preset: str, device: str) -> Path:
    """The checkpoint `folder/preset`, built with random weights first if it is not there (a lease starts bare)."""
    from backend.engine.checkpoint import build_random_checkpoint, is_checkpoint

    path = folder / preset
    if not is_checkpoint(path):
        log(f"building the {preset} checkpoint")
        build_random_checkpoint(preset, path, device=device)
    return path


def bench_engine(args: argparse.Namespace, variant: str, **config: object) -> object:
    """The product's `Engine` (not loaded) on the random checkpoint of `args` (built first if missing): the fast
    engine with SDPA, bf16 on CUDA (float32 on the CPU), the compile cache of `--compile-cache` if given, and
    `config` on top (capture mode, batch, frame budget)."""
    from backend.engine import Engine, EngineConfig

    path = random_checkpoint(args.checkpoint, args.preset, args.device)
    cache = getattr(args, "compile_cache", None)
    return Engine(EngineConfig(model=str(path), variant=variant, attention="sdpa", engine_mode="fast",
                               dtype="bfloat16" if args.device.startswith("cuda") else "float32",
                               device=args.device, compile_cache_dir=str(cache) if cache else None, **config))


def base_parser(description: str) -> argparse.ArgumentParser:
    """The options every GPU script takes: which checkpoint, how many frames, how many repeats."""
    parser = checkpoint_parser(description)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=3)
    return parser
