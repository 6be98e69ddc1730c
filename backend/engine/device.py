"""Where the engine runs and what it runs on: the device and dtype "auto" resolves to, and what health reports
of the GPU and of the packages doing the work. torch is imported inside the functions: importing the engine
package stays cheap until a model loads."""

from __future__ import annotations

import importlib.metadata

from backend.schema import GpuMemory

REPORTED_PACKAGES = ("torch", "transformers", "qwen-tts", "flash-attn", "resemble-perth")


def resolve_device(device: str) -> str:
    """"auto": the first CUDA device if there is one, else the CPU."""
    import torch

    if device != "auto":
        return device
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str):
    """"auto": bf16 on CUDA, float32 elsewhere."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def gpu_name(device: str) -> str | None:
    import torch

    return torch.cuda.get_device_name(device) if device.startswith("cuda") else None


def gpu_memory(device: str) -> GpuMemory | None:
    import torch

    if not device.startswith("cuda"):
        return None
    gib = 1024**3
    return GpuMemory(
        allocated_gb=torch.cuda.memory_allocated(device) / gib,
        reserved_gb=torch.cuda.memory_reserved(device) / gib,
        peak_gb=torch.cuda.max_memory_allocated(device) / gib,
        total_gb=torch.cuda.get_device_properties(device).total_memory / gib,
    )


def versions() -> dict[str, str]:
    """Installed versions of the packages that decide speed and output (those present)."""
    found = {}
    for package in REPORTED_PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found
