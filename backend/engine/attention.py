"""Pick the attention implementation and refuse impossible requests instead of silently falling back."""

from __future__ import annotations

import importlib.util

from backend.errors import EngineConfigError


def flash_attn_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def check_attention(requested: str, device: str) -> str:
    """Return `requested` if this machine can run it, else raise a clear `EngineConfigError`."""
    if requested != "flash_attention_2":
        return requested
    if not flash_attn_available():
        raise EngineConfigError(
            "attention 'flash_attention_2' was requested but the flash-attn package is not importable here. "
            "Install the prebuilt flash-attn wheel (see README, Modal FA2 image) or choose 'sdpa'.",
            code="flash_attn_missing",
        )
    if not device.startswith("cuda"):
        raise EngineConfigError(
            f"attention 'flash_attention_2' needs a CUDA GPU (Ampere or newer); the device is {device!r}.",
            code="flash_attn_needs_cuda",
        )
    return requested


def active_attention(model) -> str:
    """The implementation the loaded talker really runs (what health reports)."""
    return str(model.talker.config._attn_implementation)
