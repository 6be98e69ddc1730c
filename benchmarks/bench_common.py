"""What every GPU benchmark script shares: the text and transcript they speak, and GPU-aware timing helpers.

Imports only torch, so bench_peer.py (its own Python path, without the stock qwen-tts) can use it too.
"""

from __future__ import annotations

import time

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
