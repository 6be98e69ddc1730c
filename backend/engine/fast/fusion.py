"""Merge each layer's q/k/v and gate/up weights into one matrix, keeping qwen-tts's modules working on views.

At batch 1 every projection is a separate matrix-vector kernel whose launch costs about as much as its reads;
one GEMM over the stacked rows does the same arithmetic in one kernel (two fewer per attention, one fewer per
MLP: ~300 fewer kernels per 1.7B frame). The stacked matrix becomes the storage of the original parameters
(`weight.data` = a row slice of it), so memory does not grow and the stock path runs unchanged on the same
numbers. It is registered as a non-persistent buffer: state dicts are untouched, and torch.compile lifts it as
an input like a parameter, so one compiled graph still serves every layer.
"""

from __future__ import annotations

import torch


def _stack(owner: torch.nn.Module, name: str, parts: list[torch.nn.Linear]) -> None:
    if hasattr(owner, name) or any(p.bias is not None for p in parts):
        return
    with torch.no_grad():
        stacked = torch.cat([p.weight for p in parts])
        start = 0
        for part in parts:
            rows = part.weight.shape[0]
            part.weight.data = stacked[start:start + rows]
            start += rows
    owner.register_buffer(name, stacked, persistent=False)


def fuse_projections(model: torch.nn.Module) -> None:
    """Give every talker and code-predictor layer `self_attn.qkv_weight` and `mlp.gate_up_weight` (idempotent)."""
    talker = model.talker
    for layer in list(talker.model.layers) + list(talker.code_predictor.model.layers):
        attention = layer.self_attn
        _stack(attention, "qkv_weight", [attention.q_proj, attention.k_proj, attention.v_proj])
        _stack(layer.mlp, "gate_up_weight", [layer.mlp.gate_proj, layer.mlp.up_proj])
