"""The fast decode loop: static KV caches, one frame = one (graph-captured) step, batch buckets, lazy EOS checks.

A frame of Qwen3-TTS is one talker step plus 15 code-predictor steps. Stock qwen-tts runs them through
`GenerationMixin.generate` twice nested: ~1,000 small kernel launches and several host syncs per 80 ms of audio.
Here the prompt is prefilled by qwen-tts's own talker forward (so prefill is stock by construction), its K/V are
copied into static caches, and every later frame runs `_frame` on fixed-shape device buffers: on CUDA that
function is captured once per (batch bucket, cache-length bucket) as a CUDA graph and replayed, over
`torch.compile`d layer halves and sampler (fewer, fused kernels: 18 -> 7.3 ms/frame at batch 1 on an H100); on the
CPU it runs eagerly and uncompiled, which is what the CI parity test exercises. Each new (bucket, length) pays a
capture and, compiled, a compilation of ~20 s on first use: `warmup` does it ahead. The host looks at EOS flags only every
`eos_check_every` frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from backend.engine.fast.fusion import fuse_projections
from backend.engine.fast.layers import LayerRunner
from backend.engine.fast.sampling import SamplerSlots, SamplingConfig, choose_tokens, select_tokens

BATCH_BUCKETS = (1, 2, 4, 8, 16)
LENGTH_BUCKET = 256  # talker attention reads this many cache slots per step, rounded up


@dataclass
class TalkerInputs:
    """What stock `Qwen3TTSForConditionalGeneration.generate` hands to `talker.generate` (left-padded batch)."""

    inputs_embeds: torch.Tensor  # (B, L0, C)
    attention_mask: torch.Tensor  # (B, L0) 1 = token, 0 = left padding
    trailing_text_hidden: torch.Tensor  # (B, T, C) text still to feed, one row per frame
    tts_pad_embed: torch.Tensor  # (1, 1, C) fed once the text has run out


@dataclass(frozen=True)
class DecodeSettings:
    """The talker's and the code predictor's samplers plus the frame budget (stock `generate` semantics)."""

    talker: SamplingConfig
    predictor: SamplingConfig
    max_new_tokens: int
    eos: int
    min_new_tokens: int = 2  # qwen-tts hard-codes 2


def _bucket(value: int, buckets: tuple[int, ...]) -> int:
    return next(b for b in buckets if b >= value)


class FastDecoder:
    """Owns the static buffers and CUDA graphs for one loaded qwen-tts model; not thread-safe (one generation
    at a time, like the engine's lock)."""

    def __init__(self, model: torch.nn.Module, *, max_batch: int = 16, max_len: int = 2560,
                 use_graphs: bool | None = None, compile: bool | None = None, eos_check_every: int = 8) -> None:
        self.model = model
        self.talker = model.talker
        self.predictor = model.talker.code_predictor
        config = model.config.talker_config
        self.device = self.talker.codec_head.weight.device
        self.dtype = self.talker.codec_head.weight.dtype
        self.vocab = config.vocab_size
        self.groups = config.num_code_groups
        self.batch_buckets = tuple(b for b in BATCH_BUCKETS if b < max_batch) + (max_batch,)
        self.max_batch = max_batch
        self.max_len = max_len
        self.use_graphs = self.device.type == "cuda" if use_graphs is None else use_graphs
        self.eos_check_every = eos_check_every
        compile = self.use_graphs if compile is None else compile
        self.layer_step = LayerRunner(compile)
        self.select = torch.compile(select_tokens, dynamic=False) if compile else select_tokens
        fuse_projections(model)
        self._graphs: dict[tuple[int, int], torch.cuda.CUDAGraph] = {}
        self._pool = None
        with torch.inference_mode():
            self._allocate(config)

    # -- buffers -------------------------------------------------------------------------------------------
    def _allocate(self, config) -> None:
        dev, dt, rows, length = self.device, self.dtype, self.max_batch, self.max_len
        hidden = config.hidden_size

        def cache(module, slots: int) -> list[torch.Tensor]:
            """Per layer, keys and values stacked: (2, rows, KV heads, slots, head dim), written in one kernel."""
            cfg = module.config
            shape = (2, rows, cfg.num_key_value_heads, slots, cfg.head_dim)
            # zeros, not empty: masked slots are multiplied by 0 in attention, and 0 * NaN garbage is NaN
            return [torch.zeros(shape, dtype=dt, device=dev) for _ in range(cfg.num_hidden_layers)]

        self.talker_cache = cache(self.talker.model, length)
        self.predictor_cache = cache(self.predictor.model, self.groups)
        self.valid = torch.zeros(rows, length, dtype=torch.bool, device=dev)
        self.token = torch.zeros(rows, dtype=torch.long, device=dev)
        self.past_hidden = torch.zeros(rows, 1, hidden, dtype=dt, device=dev)
        self.rope_delta = torch.zeros(rows, 1, dtype=torch.long, device=dev)
        self.trailing = torch.zeros(rows, length, hidden, dtype=dt, device=dev)
        self.seen = torch.zeros(rows, self.vocab, dtype=torch.bool, device=dev)
        self.finished = torch.zeros(rows, dtype=torch.bool, device=dev)
        self.codes = torch.zeros(rows, length, self.groups, dtype=torch.long, device=dev)
        self.step = torch.zeros(1, dtype=torch.long, device=dev)  # frames done
        self.position = torch.zeros(1, dtype=torch.long, device=dev)  # talker cache slot of the next token
        self.talker_slots = SamplerSlots(rows, dev)
        self.predictor_slots = SamplerSlots(rows, dev)

        self.eos = torch.zeros(1, dtype=torch.long, device=dev)
        self.filler = torch.zeros(1, dtype=torch.long, device=dev)  # what finished rows feed back
        self.suppress = torch.zeros(self.vocab, dtype=torch.float32, device=dev)
        self.eos_ban = torch.zeros(self.vocab, dtype=torch.float32, device=dev)
        self._eos_id: int | None = None
        self._set_eos(config.codec_eos_token_id)
        self.min_new_tokens = torch.full((1,), 2, dtype=torch.long, device=dev)

        # The code predictor restarts at position 0 every frame: its rotary tables, write slots and causal
        # biases are constants.
        slots = self.groups
        positions = torch.arange(slots, device=dev)
        probe = torch.zeros(1, slots, self.predictor.config.hidden_size, dtype=dt, device=dev)
        self.predictor_rope = self.predictor.model.rotary_emb(probe, positions[None])
        self.predictor_slot = [positions[i:i + 1] for i in range(slots)]
        self.predictor_prefill_slots = positions[:2]
        causal = torch.full((slots, slots), torch.finfo(dt).min, dtype=dt, device=dev).triu(1)
        self.predictor_bias = causal[None, None]  # (1, 1, slots, slots): row p may read slots <= p

    def _set_eos(self, eos: int) -> None:
        """Refill (in place, so captured graphs see it) the EOS id and stock generate's token bans for it."""
        if eos == self._eos_id:
            return
        self._eos_id = eos
        self.eos.fill_(eos)
        self.filler.fill_(eos if 0 <= eos < self.vocab else 0)  # an id out of the vocabulary cannot be embedded
        self.suppress.zero_()
        self.suppress[self.vocab - 1024:] = float("-inf")  # stock: suppress_tokens = last 1024 ids but EOS
        self.eos_ban.zero_()
        if 0 <= eos < self.vocab:
            self.suppress[eos] = 0.0
            self.eos_ban[eos] = float("-inf")

    # -- one frame -----------------------------------------------------------------------------------------
    def _predict_codes(self, rows: int) -> torch.Tensor:
        """The 15 residual codes of the current frame (stock: `code_predictor.generate`), unrolled."""
        predictor, model = self.predictor, self.predictor.model
        cos, sin = self.predictor_rope
        caches = [kv[:, :rows] for kv in self.predictor_cache]
        first = self.talker.get_input_embeddings()(self.token[:rows, None])
        hidden = predictor.small_to_mtp_projection(torch.cat((self.past_hidden[:rows], first), dim=1))
        positions, span = self.predictor_prefill_slots, slice(0, 2)
        codes = []
        for step in range(self.groups - 1):
            bias = self.predictor_bias[:, :, span]
            for layer, kv in zip(model.layers, caches):
                hidden = self.layer_step(layer, hidden, cos[:, span], sin[:, span], kv, positions, bias)
            logits = predictor.lm_head[step](model.norm(hidden[:, -1])).float()
            token = choose_tokens(logits, self.predictor_slots, rows, select=self.select)
            codes.append(token)
            if step + 1 < self.groups - 1:
                hidden = predictor.small_to_mtp_projection(model.codec_embedding[step](token[:, None]))
                positions, span = self.predictor_slot[step + 2], slice(step + 2, step + 3)
        return torch.stack(codes, dim=1)

    def _frame(self, rows: int, length: int) -> None:
        """Emit one frame (previous talker token + 15 predicted codes) and sample the next talker token."""
        talker = self.talker
        token = self.token[:rows]
        residual = self._predict_codes(rows)
        frame = torch.cat((token[:, None], residual), dim=1)
        self.codes[:rows].index_copy_(1, self.step, frame[:, None])

        embeds = [talker.get_input_embeddings()(token[:, None])]
        embeds += [self.predictor.model.codec_embedding[i](residual[:, i:i + 1]) for i in range(self.groups - 1)]
        hidden = torch.cat(embeds, dim=1).sum(1, keepdim=True)
        hidden = hidden + self.trailing[:rows].index_select(1, self.step.clamp(max=self.max_len - 1))

        position_ids = (self.position + self.rope_delta[:rows]).unsqueeze(0).expand(3, -1, -1)
        cos, sin = talker.model.rotary_emb(hidden, position_ids)
        self.valid[:rows].index_fill_(1, self.position, True)
        bias = torch.where(self.valid[:rows, None, None, :length], 0.0, torch.finfo(self.dtype).min).to(self.dtype)
        for layer, kv in zip(talker.model.layers, self.talker_cache):
            hidden = self.layer_step(layer, hidden, cos[0], sin[0], kv[:, :rows, :, :length], self.position, bias)
        hidden = talker.model.norm(hidden)
        logits = talker.codec_head(hidden[:, -1]).float()
        early = (self.step + 1 < self.min_new_tokens).to(torch.float32)
        ban = self.suppress + self.eos_ban * early
        chosen = choose_tokens(logits, self.talker_slots, rows, ban=ban, seen=self.seen[:rows], select=self.select)
        self.finished[:rows] |= chosen == self.eos
        chosen = torch.where(self.finished[:rows], self.filler, chosen)  # stock feeds finished rows EOS
        self.seen[:rows].scatter_(1, chosen[:, None], True)
        self.token[:rows].copy_(chosen)
        self.past_hidden[:rows].copy_(hidden)
        self.step.add_(1)
        self.position.add_(1)

    # -- graphs --------------------------------------------------------------------------------------------
    def _runner(self, rows: int, length: int):
        """A zero-argument callable that advances one frame: a graph replay on CUDA, else the eager frame."""
        if not self.use_graphs:
            return lambda: self._frame(rows, length)
        key = (rows, length)
        if key not in self._graphs:
            self._graphs[key] = self._capture(rows, length)
        return self._graphs[key].replay

    def _capture(self, rows: int, length: int) -> torch.cuda.CUDAGraph:
        """Capture `_frame` (after two warm-up runs on a side stream, as CUDA graphs require); restores the RNG
        so a seeded generation does not depend on whether a capture happened first. Buffers are re-initialised
        by the next prefill, so the warm-up's writes do no harm."""
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        with torch.random.fork_rng(devices=[self.device]):
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._frame(rows, length)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                self._frame(rows, length)
        return graph

    def warmup(self, batches: tuple[int, ...] | None = None, length: int = LENGTH_BUCKET) -> None:
        """Capture the graphs for these batch buckets ahead of the first request (no-op on the CPU)."""
        if not self.use_graphs:
            return
        with torch.inference_mode():
            for rows in batches or self.batch_buckets:
                self._runner(_bucket(rows, self.batch_buckets), length)

    # -- generation ----------------------------------------------------------------------------------------
    def _prefill(self, inputs: TalkerInputs, rows: int, settings: DecodeSettings) -> None:
        """Stock talker forward over the prompt, then K/V, masks, text and sampler state into the buffers."""
        embeds, mask, trailing = inputs.inputs_embeds, inputs.attention_mask, inputs.trailing_text_hidden
        real = embeds.shape[0]
        self._set_eos(settings.eos)
        if rows > real:  # fill the bucket with copies of the last row; their output is dropped
            pick = torch.cat((torch.arange(real), torch.full((rows - real,), real - 1))).to(embeds.device)
            embeds, mask, trailing = embeds[pick], mask[pick], trailing[pick]
        length = embeds.shape[1]
        cache = DynamicCache()
        out = self.talker(inputs_embeds=embeds, attention_mask=mask, past_key_values=cache, use_cache=True,
                          cache_position=torch.arange(length, device=embeds.device),
                          trailing_text_hidden=trailing, tts_pad_embed=inputs.tts_pad_embed)
        for layer, kv in zip(cache.layers, self.talker_cache):
            kv[0, :rows, :, :length].copy_(layer.keys)
            kv[1, :rows, :, :length].copy_(layer.values)
        self.valid[:rows].zero_()
        self.valid[:rows, :length].copy_(mask.bool())
        self.rope_delta[:rows, 0].copy_(-(mask == 0).sum(-1))
        self.trailing[:rows].copy_(inputs.tts_pad_embed.expand(rows, self.max_len, -1))
        self.trailing[:rows, :trailing.shape[1]].copy_(trailing)
        self.talker_slots.fill(settings.talker, self.vocab)
        self.predictor_slots.fill(settings.predictor, self.predictor.config.vocab_size)
        self.min_new_tokens.fill_(settings.min_new_tokens)
        self.seen[:rows].zero_()
        self.finished[:rows].zero_()
        self.finished[real:rows].fill_(True)
        logits = out.logits[:, -1].float()
        ban = self.suppress + (self.eos_ban if settings.min_new_tokens > 0 else 0.0)
        first = choose_tokens(logits, self.talker_slots, rows, ban=ban, seen=self.seen[:rows])
        self.seen[:rows].scatter_(1, first[:, None], True)
        self.token[:rows].copy_(first)
        self.past_hidden[:rows].copy_(out.past_hidden)
        self.step.zero_()
        self.position.fill_(length)

    def frames(self, inputs: TalkerInputs, settings: DecodeSettings, *, chunks: Sequence[int] = (),
               on_frame: Callable[[int], None] | None = None) -> Iterator[torch.Tensor]:
        """Decode, yielding new frames (real rows x n x 16 codes, on the device) in chunks of the sizes in
        `chunks` (the last size repeats; empty: one chunk at the end). Rows that hit EOS keep running until all
        have, like stock generate; callers cut each row at its first EOS (`trim_at_eos`).

        `on_frame(done)` is called after every frame with the frames done so far (of `max_new_tokens - 1`); on
        CUDA the count runs at most `eos_check_every` frames ahead of the GPU (the EOS check waits for it)."""
        real, prompt = inputs.inputs_embeds.shape[0], inputs.inputs_embeds.shape[1]
        rows = _bucket(real, self.batch_buckets)
        budget = settings.max_new_tokens - 1  # stock: the last sampled token never becomes a frame
        length = min(-(-(prompt + budget + 1) // LENGTH_BUCKET) * LENGTH_BUCKET, self.max_len)
        if real > self.max_batch or prompt + budget > self.max_len:
            raise ValueError(f"batch {real} x {prompt + budget} tokens exceeds the fast decoder's "
                             f"{self.max_batch} x {self.max_len}")
        sizes = list(chunks) or [budget]
        # Inference mode per segment, never across a `yield` (it is thread-local state the caller would inherit).
        with torch.inference_mode():
            advance = self._runner(rows, length)
            self._prefill(inputs, rows, settings)
        done = emitted = 0
        while done < budget:
            with torch.inference_mode():
                advance()
                done += 1
                last = done == budget
                stop = (last or done % self.eos_check_every == 0) and bool(self.finished[:real].all())
                due = done - emitted >= sizes[0]
                new = self.codes[:real, emitted:done].clone() if stop or last or due else None
            if on_frame is not None:
                on_frame(done)
            if new is not None:
                emitted = done
                sizes = sizes[1:] or sizes
                yield new
            if stop:
                return


def trim_at_eos(codes: torch.Tensor, eos: int) -> list[torch.Tensor]:
    """Each row of (B, n, 16) codes up to (not including) its first EOS in codebook 0, as stock generate cuts."""
    hits = codes[:, :, 0] == eos
    lengths = torch.where(hits.any(1), hits.int().argmax(1), codes.shape[1]).tolist()
    return [row[:n] for row, n in zip(codes, lengths)]
