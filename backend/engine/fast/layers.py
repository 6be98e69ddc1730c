"""One decoder layer of the talker or the code predictor against a static KV cache, from qwen-tts's own modules.

qwen-tts's layers take a transformers `Cache` and build masks on the host each call, which a CUDA graph cannot
hold. These functions call the same submodules (norms, projections, MLP) with the same arithmetic, but write
K/V into preallocated tensors at a device-side position and attend with grouped heads directly (no K/V
repeat: at batch 16 that copy would cost more than the attention itself).

A layer is split in two around the cache write so each half can be handed to `torch.compile` (which fuses the
norms, RoPE and softmax into a few kernels) while the in-place write into the shared cache stays outside it:
a compiled function that mutates a view of its input may copy the whole view back.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from qwen_tts.core.models.modeling_qwen3_tts import apply_rotary_pos_emb


def attend(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor,
           scaling: float) -> torch.Tensor:
    """Grouped-query attention of `query` (B, H, T, D) over a cache (B, KV, L, D) with an additive `bias`
    (B or 1, 1, T, L); softmax in float32 like qwen-tts's eager path. Returns (B, T, H * D)."""
    batch, heads, steps, dim = query.shape
    groups = heads // keys.shape[1]
    grouped = query.reshape(batch, keys.shape[1], groups * steps, dim)  # head h reads kv head h // groups
    scores = torch.matmul(grouped, keys.transpose(2, 3)) * scaling
    scores = scores + bias.repeat(1, 1, groups, 1)
    weights = scores.softmax(dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(weights, values).reshape(batch, heads, steps, dim)
    return out.transpose(1, 2).reshape(batch, steps, heads * dim)


def project(layer: torch.nn.Module, hidden: torch.Tensor, cos: torch.Tensor,
            sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Query, key and value (B, heads, T, D) of `hidden` (B, T, C), normed and rotated as qwen-tts does.

    `cos`/`sin` are 1-D rotary tables for these positions. The talker's multimodal RoPE reduces to them: for
    speech its three position streams are equal, so the interleaved sections all read the same angle.
    """
    attention = layer.self_attn
    batch, steps, _ = hidden.shape
    shape = (batch, steps, -1, attention.head_dim)
    normed = layer.input_layernorm(hidden)
    query = attention.q_norm(attention.q_proj(normed).view(shape)).transpose(1, 2)
    key = attention.k_norm(attention.k_proj(normed).view(shape)).transpose(1, 2)
    value = attention.v_proj(normed).view(shape).transpose(1, 2)
    query, key = apply_rotary_pos_emb(query, key, cos, sin)
    return query, key, value


def finish(layer: torch.nn.Module, hidden: torch.Tensor, query: torch.Tensor, keys: torch.Tensor,
           values: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Attention over the cache, output projection and MLP, both with their residuals."""
    attention = layer.self_attn
    hidden = hidden + attention.o_proj(attend(query, keys, values, bias, attention.scaling))
    return hidden + layer.mlp(layer.post_attention_layernorm(hidden))


class LayerRunner:
    """Runs a layer step, with `project`/`finish` compiled when asked (CUDA): one compiled graph per shape serves
    every layer of a stack, since torch.compile lifts module parameters to inputs."""

    def __init__(self, compile: bool) -> None:
        if compile:  # (talker, predictor prefill, predictor step) x batch buckets x cache lengths
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        self.project: Callable = torch.compile(project, dynamic=False) if compile else project
        self.finish: Callable = torch.compile(finish, dynamic=False) if compile else finish

    def __call__(self, layer: torch.nn.Module, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                 keys: torch.Tensor, values: torch.Tensor, positions: torch.Tensor,
                 bias: torch.Tensor) -> torch.Tensor:
        """`layer` on `hidden` (B, T, C) whose tokens go to cache `positions` (T,) of `keys`/`values`."""
        query, key, value = self.project(layer, hidden, cos, sin)
        keys.index_copy_(2, positions, key)
        values.index_copy_(2, positions, value)
        return self.finish(layer, hidden, query, keys, values, bias)
