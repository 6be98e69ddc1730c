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


def base_parser(description: str) -> argparse.ArgumentParser:
    """The options every GPU script takes: which checkpoint, how many frames, how many repeats."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--preset", default="1.7b")
    parser.add_argument("--checkpoint", type=Path, default=Path("/tmp/voicebot-ckpt"))
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=3)
    return parser
