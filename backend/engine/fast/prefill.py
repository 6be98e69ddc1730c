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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
import torch

from backend.engine.fast.graphs import GraphFamily
from backend.engine.fast.staging import StagedPrompt, TalkerInputs

if TYPE_CHECKING:
    from backend.engine.fast.decoder import FastDecoder

log = structlog.get_logger(__name__)
CHUNK = 64  # prompt tokens per step: a ~200-token prompt is 4 replays


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    length: int  # cache slots its attention reads


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
        self.cache = [torch.zeros(shape, dtype=self.dtype, device=self.device)
                      for _ in range(config.num_hidden_layers)]
        self.hidden_in = torch.zeros(1, CHUNK, config.hidden_size, dtype=self.dtype, device=self.device)
        self.hidden_out = torch.zeros_like(self.hidden_in)
        self.positions = torch.arange(CHUNK, device=self.device)
        self._graphs: dict[int, _Graph] = {}
        self._failed: set[int] = set()

    def fits(self, inputs: TalkerInputs) -> bool:
        """One row without padding, within the cache: what this prefill handles (else: stock's forward)."""
        embeds, mask = inputs.inputs_embeds, inputs.attention_mask
        padded = -(-embeds.shape[1] // CHUNK) * CHUNK
        return embeds.shape[0] == 1 and padded <= self.buckets[-1] and bool(mask.all())

    def capture(self, lengths: tuple[int, ...]) -> None:
        """Capture the chunk step for the cache lengths that hold these prompt lengths (at load; no-op without
        graphs)."""
        if not self.use_graphs:
            return
        with torch.inference_mode():
            for length in lengths:
                self._graph(self._bucket(length))

    def run(self, inputs: TalkerInputs) -> StagedPrompt:
        """The prompt through every layer, chunk by chunk; its K/V (copied out), last logits and hidden."""
        embeds = inputs.inputs_embeds
        total = embeds.shape[1]
        length = self._bucket(total)
        graph = self._graph(length) if self.use_graphs else None
        for start in range(0, total, CHUNK):
            count = min(CHUNK, total - start)
            self.hidden_in.zero_()
            self.hidden_in[:, :count].copy_(embeds[:, start:start + count])
            self.positions.copy_(torch.arange(start, start + CHUNK, device=self.device))
            if graph is not None:
                graph.graph.replay()
            else:
                self._chunk(length)
        last = (total - 1) % CHUNK
        hidden = self.hidden_out[:, last:last + 1].clone()
        return StagedPrompt(keys=[kv[0, :, :, :total].clone() for kv in self.cache],
                            values=[kv[1, :, :, :total].clone() for kv in self.cache], inputs=inputs,
                            logits=self.talker.codec_head(hidden[:, 0]).float(), past_hidden=hidden)

    def _bucket(self, tokens: int) -> int:
        """The smallest cache length holding `tokens` rounded up to whole chunks."""
        padded = -(-tokens // CHUNK) * CHUNK
        return next((length for length in self.buckets if length >= padded), self.buckets[-1])

    def _chunk(self, length: int) -> None:
        """One chunk: `hidden_in` at `positions` through the talker's layers and final norm into `hidden_out`."""
        hidden, positions = self.hidden_in, self.positions
        cos, sin = self.talker.model.rotary_emb(hidden, positions.view(1, 1, -1).expand(3, 1, -1))
        keys = torch.arange(length, device=self.device)
        visible = keys[None, :] <= positions[:, None]  # causal: every slot up to the token's own
        bias = torch.where(visible, 0.0, torch.finfo(self.dtype).min).to(self.dtype)[None, None]
        for layer, kv in zip(self.talker.model.layers, self.cache):
            hidden = self.step(layer, hidden, cos[0], sin[0], kv[:, :, :, :length], positions, bias)
        self.hidden_out.copy_(self.talker.model.norm(hidden))

    def _graph(self, length: int) -> _Graph | None:
        """The chunk step at cache `length`, captured on first use; None where capturing failed (eager)."""
        if length in self._graphs or length in self._failed:
            return self._graphs.get(length)
        try:
            graph, _ = self._family.capture(lambda: self._chunk(length))
        except Exception as error:  # noqa: BLE001 - that length prefills eagerly
            self._failed.add(length)
            log.warning("fast.prefill_capture_failed", length=length, error=repr(error)[:300])
            return None
        self._graphs[length] = _Graph(graph, length)
        return self._graphs[length]
