"""One decoder layer of the talker or the code predictor against a static KV cache, from qwen-tts's own modules.

qwen-tts's layers take a transformers `Cache` and build masks on the host each call, which a CUDA graph cannot
hold. These functions call the same submodules (norms, MLP activation, output projection) with the same
arithmetic, but project q/k/v and gate/up with the fused weights of `fusion.py`, write K/V into one
preallocated tensor (2, B, KV, L, D) at a device-side position, and attend with grouped heads directly (no K/V
repeat: at batch 16 that copy would cost more than the attention itself).

A layer is split in two around the cache write so each half can be handed to `torch.compile` (which fuses the
norms, RoPE and softmax into a few kernels) while the in-place write into the shared cache stays outside it:
a compiled function that mutates a view of its input may copy the whole view back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from qwen_tts.core.models.modeling_qwen3_tts import apply_rotary_pos_emb


def attend(query: torch.Tensor, cache: torch.Tensor, bias: torch.Tensor, scaling: float) -> torch.Tensor:
    """Grouped-query attention of `query` (B, H, T, D) over `cache` (2, B, KV, L, D) with an additive `bias`
    (B or 1, 1, T, L); softmax in float32 like qwen-tts's eager path. Returns (B, T, H * D)."""
    keys, values = cache[0], cache[1]
    batch, heads, steps, dim = query.shape
    groups = heads // keys.shape[1]
    grouped = query.reshape(batch, keys.shape[1], groups * steps, dim)  # head h reads kv head h // groups
    scores = torch.matmul(grouped, keys.transpose(2, 3)) * scaling
    scores = scores + bias.repeat(1, 1, groups, 1)
    weights = scores.softmax(dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(weights, values).reshape(batch, heads, steps, dim)
    return out.transpose(1, 2).reshape(batch, steps, heads * dim)


def project(layer: torch.nn.Module, hidden: torch.Tensor, cos: torch.Tensor,
            sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Query (B, H, T, D) and stacked key/value (2, B, KV, T, D) of `hidden` (B, T, C), normed and rotated as
    qwen-tts does.

    `cos`/`sin` are 1-D rotary tables for these positions. The talker's multimodal RoPE reduces to them: for
    speech its three position streams are equal, so the interleaved sections all read the same angle.
    """
    attention = layer.self_attn
    batch, steps, _ = hidden.shape
    shape = (batch, steps, -1, attention.head_dim)
    mixed = F.linear(layer.input_layernorm(hidden), attention.qkv_weight)
    query, key, value = mixed.split([attention.q_proj.out_features, attention.k_proj.out_features,
                                     attention.v_proj.out_features], dim=-1)
    query = attention.q_norm(query.view(shape)).transpose(1, 2)
    key = attention.k_norm(key.view(shape)).transpose(1, 2)
    query, key = apply_rotary_pos_emb(query, key, cos, sin)
    return query, torch.stack((key, value.view(shape).transpose(1, 2)))


def finish(layer: torch.nn.Module, hidden: torch.Tensor, query: torch.Tensor, cache: torch.Tensor,
           bias: torch.Tensor) -> torch.Tensor:
    """Attention over the cache, output projection and MLP, both with their residuals."""
    attention, mlp = layer.self_attn, layer.mlp
    hidden = hidden + attention.o_proj(attend(query, cache, bias, attention.scaling))
    gate, up = F.linear(layer.post_attention_layernorm(hidden), mlp.gate_up_weight).chunk(2, dim=-1)
    return hidden + mlp.down_proj(mlp.act_fn(gate) * up)


class LazyCompiled:
    """`torch.compile(fn, dynamic=False)`, made at the first call.

    Making the wrapper imports Inductor (about 560 modules: 2-6 s of a cold start). A start that serves eager CUDA
    graphs first and compiles on a background thread (`fast_capture="background"`) needs none of it before it is
    ready, so the import moves to the thread's first compile.
    """

    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self._compiled: Callable | None = None
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        compiled = self._compiled
        if compiled is None:
            with self._lock:
                if self._compiled is None:
                    self._compiled = torch.compile(self.fn, dynamic=False)
                compiled = self._compiled
        return compiled(*args, **kwargs)


class LayerRunner:
    """Runs a layer step, with `project`/`finish` compiled when asked (CUDA): one compiled graph per shape serves
    every layer of a stack, since torch.compile lifts module parameters and buffers to inputs."""

    def __init__(self, compile: bool) -> None:
        if compile:  # (talker, predictor prefill, predictor step) x batch buckets x cache lengths
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        self.compiled = compile
        self.project: Callable = LazyCompiled(project) if compile else project
        self.finish: Callable = LazyCompiled(finish) if compile else finish

    def __call__(self, layer: torch.nn.Module, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                 cache: torch.Tensor, positions: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """`layer` on `hidden` (B, T, C) whose tokens go to slots `positions` of `cache` (2, B, KV, L, D): (T,)
        the same slots for every row, or (B, 1) one slot per row (the talker, whose rows are at their own
        positions)."""
        query, key_value = self.project(layer, hidden, cos, sin)
        if positions.dim() == 2:
            slots = positions.view(1, -1, 1, 1, 1).expand(2, -1, key_value.shape[2], 1, key_value.shape[4])
            cache.scatter_(3, slots, key_value)
        else:
            cache.index_copy_(3, positions, key_value)
        return self.finish(layer, hidden, query, cache, bias)
