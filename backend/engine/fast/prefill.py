"""A one-row prompt prefill through the fast decoder's own layer code, `CHUNK` tokens at a time into a static
one-row cache, so that on CUDA each chunk is one replay of a captured graph.

Why: the stock talker forward is a few hundred kernel launches per prompt, all holding the GIL (46 ms for a
187-character prompt on one H200, `bench_load.py` micro costs). Under load, those launches starved the threads
that feed the continuous batch. A replay is one launch, so the host cost per prompt becomes a handful of replays
and copies.

The arithmetic is the decode frames' (`layers.LayerRunner`, uncompiled: graphs of the plain functions need no
Inductor at start): each chunk's tokens write their K/V at their positions and attend, causally, to every slot
up to their own. Queries past the prompt (the last chunk's padding) write slots past it and are never read:
only the prompt's slots are handed on (`StagedPrompt`), and the decode frames overwrite the rest. One prefill
at a time (the static buffers are shared; `Stager` serializes).

Capturing never touches those buffers: the warm-up runs on a scratch look-alike and the recording executes
nothing, so the background thread captures the cache lengths `Engine.load` left while prompts are prefilled.
A prompt whose length has no graph yet prefills eagerly: no prompt waits for a capture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from backend.engine.fast.graphs import GraphFamily, capture_once
from backend.engine.fast.staging import StagedPrompt, TalkerInputs

if TYPE_CHECKING:
    from backend.engine.fast.decoder import FastDecoder

CHUNK = 64  # prompt tokens per step: a ~200-token prompt is 4 replays


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    length: int  # cache slots its attention reads


@dataclass
class _Buffers:
    """What a chunk reads and writes: the prefill's own set, or a scratch copy a warm-up writes instead."""

    hidden_in: torch.Tensor  # (1, CHUNK, hidden) the chunk's input embeddings
    hidden_out: torch.Tensor  # (1, CHUNK, hidden) after the final norm
    positions: torch.Tensor  # (CHUNK,) the chunk's token positions
    cache: list[torch.Tensor]  # per layer (2, 1, kv heads, slots, head dim)

    def scratch(self, length: int) -> _Buffers:
        """Zeroed look-alikes, with `length` cache slots (what a chunk at that length reads)."""
        return _Buffers(torch.zeros_like(self.hidden_in), torch.zeros_like(self.hidden_out),
                        torch.arange(CHUNK, device=self.positions.device),
                        [torch.zeros_like(kv[:, :, :, :length]) for kv in self.cache])


class ChunkedPrefill:
    """Prefills one prompt (one row, no padding) into its own cache; `run` returns it staged for a slot."""

    def __init__(self, decoder: FastDecoder) -> None:
        self.talker = decoder.talker
        self.step = decoder.eager_step
        self.device, self.dtype = decoder.device, decoder.dtype
        self._family = GraphFamily(self.device)  # its chunk graphs replay on the stager's stream, one at a time
        self.buckets = decoder.length_buckets
        self.use_graphs = decoder.use_graphs
        config = self.talker.model.config
        shape = (2, 1, config.num_key_value_heads, decoder.max_len, config.head_dim)
        hidden_in = torch.zeros(1, CHUNK, config.hidden_size, dtype=self.dtype, device=self.device)
        self.buffers = _Buffers(hidden_in, torch.zeros_like(hidden_in), torch.arange(CHUNK, device=self.device),
                                [torch.zeros(shape, dtype=self.dtype, device=self.device)
                                 for _ in range(config.num_hidden_layers)])
        self._graphs: dict[int, _Graph] = {}
        self._failed: set[int] = set()

    def fits(self, inputs: TalkerInputs) -> bool:
        """One row without padding, within the cache: what this prefill handles (else: stock's forward)."""
        embeds, mask = inputs.inputs_embeds, inputs.attention_mask
        padded = -(-embeds.shape[1] // CHUNK) * CHUNK
        return embeds.shape[0] == 1 and padded <= self.buckets[-1] and bool(mask.all())

    def capture(self, lengths: tuple[int, ...] | None = None) -> None:
        """Capture the chunk step for the cache lengths that hold these prompt lengths (every cache length when
        None) that have no graph yet; no-op without graphs. Safe while prompts are prefilled (see the module's
        docstring)."""
        if not self.use_graphs:
            return
        buckets = self.buckets if lengths is None else sorted({self._bucket(length) for length in lengths})
        with torch.inference_mode():
            for length in buckets:
                capture_once(self._graphs, self._failed, length, lambda: self._chunk_graph(length),
                             family="prefill chunk")

    def run(self, inputs: TalkerInputs) -> StagedPrompt:
        """The prompt through every layer, chunk by chunk; its K/V (copied out), last logits and hidden."""
        embeds, b = inputs.inputs_embeds, self.buffers
        total = embeds.shape[1]
        length = self._bucket(total)
        graph = self._graphs.get(length)  # not captured yet, or failed: eager
        for start in range(0, total, CHUNK):
            count = min(CHUNK, total - start)
            b.hidden_in.zero_()
            b.hidden_in[:, :count].copy_(embeds[:, start:start + count])
            b.positions.copy_(torch.arange(start, start + CHUNK, device=self.device))
            if graph is not None:
                graph.graph.replay()
            else:
                self._chunk(length, b)
        last = (total - 1) % CHUNK
        hidden = b.hidden_out[:, last:last + 1].clone()
        return StagedPrompt(keys=[kv[0, :, :, :total].clone() for kv in b.cache],
                            values=[kv[1, :, :, :total].clone() for kv in b.cache], inputs=inputs,
                            logits=self.talker.codec_head(hidden[:, 0]).float(), past_hidden=hidden)

    def _bucket(self, tokens: int) -> int:
        """The smallest cache length holding `tokens` rounded up to whole chunks."""
        padded = -(-tokens // CHUNK) * CHUNK
        return next((length for length in self.buckets if length >= padded), self.buckets[-1])

    def _chunk(self, length: int, b: _Buffers) -> None:
        """One chunk: `hidden_in` at `positions` through the talker's layers and final norm into `hidden_out`."""
        hidden, positions = b.hidden_in, b.positions
        cos, sin = self.talker.model.rotary_emb(hidden, positions.view(1, 1, -1).expand(3, 1, -1))
        keys = torch.arange(length, device=self.device)
        visible = keys[None, :] <= positions[:, None]  # causal: every slot up to the token's own
        bias = torch.where(visible, 0.0, torch.finfo(self.dtype).min).to(self.dtype)[None, None]
        for layer, kv in zip(self.talker.model.layers, b.cache):
            hidden = self.step(layer, hidden, cos[0], sin[0], kv[:, :, :, :length], positions, bias)
        b.hidden_out.copy_(self.talker.model.norm(hidden))

    def _chunk_graph(self, length: int) -> _Graph:
        """The chunk step at cache `length`, warmed up on scratch buffers (a prefill may be using the real ones)."""
        scratch = self.buffers.scratch(length)
        graph, _ = self._family.capture(lambda: self._chunk(length, self.buffers),
                                        warm_up=lambda: self._chunk(length, scratch))
        return _Graph(graph, length)
