"""The fast decode loop: static KV caches, one frame = one (graph-captured) step, batch buckets, lazy EOS checks.

A frame of Qwen3-TTS is one talker step plus 15 code-predictor steps; stock qwen-tts runs them through nested
`generate` calls, ~1,000 small launches and several host syncs per 80 ms of audio. Here every frame runs `_frame`
on fixed-shape device buffers: on CUDA captured once per shape (batch bucket, cache-length bucket) as a CUDA graph
over `torch.compile`d layer halves and sampler, and replayed; on the CPU eagerly, which is what the parity tests
run. The host looks at EOS flags only every `eos_check_every` frames.

Capturing costs a compilation (on scratch buffers) and a recording (which executes nothing), so a background
thread can capture while requests run (`capture_in_background`); until a shape is captured its generation replays
a larger captured shape or runs eagerly. `capture_eager` records the plain functions (no Inductor, a fraction of a
second) so a start can serve at once and swap compiled graphs in later; both draw the same random numbers
(sampling.py). Only the swap waits for a frame being launched or a static generation (`_generating`).

Every row has its own frame count, cache position, seed and sampler settings: `frames` prefills all rows at once
(one static batch, run to its end), `join` copies one prompt prefilled beforehand (`stage`, staging.py) into a
slot while the others keep their state (the continuous batch, continuous.py).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

import structlog
import torch

from backend.engine.fast import background
from backend.engine.fast.buffers import DecodeBuffers
from backend.engine.fast.fusion import fuse_projections
from backend.engine.fast.graphs import GraphFamily
from backend.engine.fast.layers import LayerRunner, LazyCompiled
from backend.engine.fast.prefill import ChunkedPrefill
from backend.engine.fast.sampling import DecodeSettings, banned_choice, choose_tokens, row_noise, select_tokens
from backend.engine.fast.staging import StagedPrompt, Stager, TalkerInputs

log = structlog.get_logger(__name__)
BATCH_BUCKETS = (1, 2, 4, 8, 16)
LENGTH_BUCKET = 256  # talker attention reads this many cache slots per step, rounded up
Shape = tuple[int, int]  # (batch bucket, cache length): one compiled frame and one CUDA graph


def _bucket(value: int, buckets: tuple[int, ...]) -> int:
    return next(b for b in buckets if b >= value)


class FastDecoder:
    """Owns the static buffers and CUDA graphs for one loaded qwen-tts model. One generation at a time (the
    engine's lock); graphs may be captured from another thread meanwhile (`capture_in_background`)."""

    def __init__(self, model: torch.nn.Module, *, max_batch: int = 16, max_len: int = 2560,
                 use_graphs: bool | None = None, compile: bool | None = None, eos_check_every: int = 8) -> None:
        self.model = model
        self.talker = model.talker
        self.predictor = model.talker.code_predictor
        config = model.config.talker_config
        self.device = self.talker.codec_head.weight.device
        self._family = GraphFamily(self.device)  # every frame graph replays on the loop's stream, one at a time
        self.dtype = self.talker.codec_head.weight.dtype
        self.vocab = config.vocab_size
        self.groups = config.num_code_groups
        self.batch_buckets = tuple(b for b in BATCH_BUCKETS if b < max_batch) + (max_batch,)
        self.length_buckets = tuple(range(LENGTH_BUCKET, max_len, LENGTH_BUCKET)) + (max_len,)
        self.max_batch = max_batch
        self.max_len = max_len
        self.use_graphs = self.device.type == "cuda" if use_graphs is None else use_graphs
        self.eos_check_every = eos_check_every
        self.compiled = self.use_graphs if compile is None else compile
        if self.compiled:  # per compiled function: (talker + predictor prefill + step) per shape, with room
            shapes = len(self.batch_buckets) * (len(self.length_buckets) + 2)
            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, shapes + 8)
        self.layer_step = LayerRunner(self.compiled)
        self.select = LazyCompiled(select_tokens) if self.compiled else select_tokens
        self.eager_step = LayerRunner(False)
        self.stager = Stager(self.talker, self.device, ChunkedPrefill(self))
        fuse_projections(model)
        self._graphs: dict[Shape, torch.cuda.CUDAGraph] = {}  # the graph each shape replays now
        self._compiled_graphs: set[Shape] = set()  # shapes whose graph runs the compiled code (else eager)
        self._ready: set[Shape] = set()  # compiled for this shape: calling the compiled code cannot compile
        self._failed: dict[Shape, str] = {}  # shapes whose compile or capture failed, and why
        self._capture_lock = threading.Lock()  # one capture at a time (start-up, background or a generation)
        # Held by a static generation from prefill to its last frame, by the loop while it launches a frame, and by
        # a graph's swap: a Lock, not an RLock (a static stream may resume on another thread than it started on).
        self._generating = threading.Lock()
        self._background = False  # a background thread captures: generations never capture or compile
        self._pool = None
        self._eos_id: int | None = None
        self.rows_in_use = 0  # slots the continuous batch holds; a static generation needs them all free
        self.serving = False  # a continuous batch runs (`serve_batch`)
        with torch.inference_mode():
            self.buffers = DecodeBuffers(self, config, max_batch, max_len)
            self._set_eos(config.codec_eos_token_id)

    def _set_eos(self, eos: int) -> None:
        """Refill (in place, so captured graphs see it) the EOS id and stock generate's token bans for it."""
        if eos == self._eos_id:
            return
        b = self.buffers
        self._eos_id = eos
        b.eos.fill_(eos)
        b.filler.fill_(eos if 0 <= eos < self.vocab else 0)  # an id out of the vocabulary cannot be embedded
        b.suppress.zero_()
        b.suppress[self.vocab - 1024:] = float("-inf")  # stock: suppress_tokens = last 1024 ids but EOS
        b.eos_ban.zero_()
        if 0 <= eos < self.vocab:
            b.suppress[eos] = 0.0
            b.eos_ban[eos] = float("-inf")

    # -- one frame -----------------------------------------------------------------------------------------
    def _predict_codes(self, b: DecodeBuffers, rows: int, compiled: bool) -> torch.Tensor:
        """The 15 residual codes of the current frame (stock: `code_predictor.generate`), unrolled."""
        predictor, model = self.predictor, self.predictor.model
        layer_step, select = (self.layer_step, self.select) if compiled else (self.eager_step, select_tokens)
        cos, sin = b.predictor_rope
        caches = [kv[:, :rows] for kv in b.predictor_cache]
        first = self.talker.get_input_embeddings()(b.token[:rows, None])
        hidden = predictor.small_to_mtp_projection(torch.cat((b.past_hidden[:rows], first), dim=1))
        positions, span = b.predictor_prefill_slots, slice(0, 2)
        seeds, draws = b.seed[:rows], b.step[:rows] * self.groups  # this frame's draws: 16 * step + 1 ... 15
        codes = []
        for step in range(self.groups - 1):
            bias = b.predictor_bias[:, :, span]
            for layer, kv in zip(model.layers, caches):
                hidden = layer_step(layer, hidden, cos[:, span], sin[:, span], kv, positions, bias)
            logits = predictor.lm_head[step](model.norm(hidden[:, -1])).float()
            token = choose_tokens(logits, b.predictor_slots, rows, select=select,
                                  noise=row_noise(seeds, draws + step + 1, logits.shape[-1]))
            codes.append(token)
            if step + 1 < self.groups - 1:
                hidden = predictor.small_to_mtp_projection(model.codec_embedding[step](token[:, None]))
                positions, span = b.predictor_slot[step + 2], slice(step + 2, step + 3)
        return torch.stack(codes, dim=1)

    def _frame(self, b: DecodeBuffers, rows: int, length: int, compiled: bool = True) -> None:
        """Emit one frame (previous talker token + 15 predicted codes) into `b` and sample the next talker token;
        `compiled=False` runs the plain functions (a shape not compiled yet)."""
        talker = self.talker
        layer_step, select = (self.layer_step, self.select) if compiled else (self.eager_step, select_tokens)
        token, step, position = b.token[:rows], b.step[:rows], b.position[:rows]
        # Rows a batch does not use (its bucket's padding) run too; clamped, their writes stay inside the shape.
        slot = position.clamp(max=length - 1)
        residual = self._predict_codes(b, rows, compiled)
        frame = torch.cat((token[:, None], residual), dim=1)
        at = step.clamp(max=self.max_len - 1).view(-1, 1, 1)  # each row writes and reads at its own frame
        b.codes[:rows].scatter_(1, at.expand(-1, 1, self.groups), frame[:, None])

        embeds = [talker.get_input_embeddings()(token[:, None])]
        embeds += [self.predictor.model.codec_embedding[i](residual[:, i:i + 1]) for i in range(self.groups - 1)]
        hidden = torch.cat(embeds, dim=1).sum(1, keepdim=True)
        hidden = hidden + b.trailing[:rows].gather(1, at.expand(-1, 1, hidden.shape[-1]))

        position_ids = (slot[:, None] + b.rope_delta[:rows]).unsqueeze(0).expand(3, -1, -1)
        cos, sin = talker.model.rotary_emb(hidden, position_ids)
        b.valid[:rows].scatter_(1, slot[:, None], True)
        bias = torch.where(b.valid[:rows, None, None, :length], 0.0, torch.finfo(self.dtype).min).to(self.dtype)
        for layer, kv in zip(talker.model.layers, b.talker_cache):
            hidden = layer_step(layer, hidden, cos[0], sin[0], kv[:, :rows, :, :length], slot[:, None], bias)
        hidden = talker.model.norm(hidden)
        logits = talker.codec_head(hidden[:, -1]).float()
        early = (step + 1 < b.min_new_tokens[:rows]).to(torch.float32)[:, None]
        ban = b.suppress + b.eos_ban * early
        chosen = choose_tokens(logits, b.talker_slots, rows, ban=ban, seen=b.seen[:rows], select=select,
                               noise=row_noise(b.seed[:rows], (step + 1) * self.groups, logits.shape[-1]))
        b.finished[:rows] |= (chosen == b.eos) | banned_choice(ban, chosen)
        chosen = torch.where(b.finished[:rows], b.filler, chosen)  # stock feeds finished rows EOS
        b.seen[:rows].scatter_(1, chosen[:, None], True)
        b.token[:rows].copy_(chosen)
        b.past_hidden[:rows].copy_(hidden)
        step.add_(1)
        position.add_(1)

    # -- graphs --------------------------------------------------------------------------------------------
    def shape(self, rows: int, tokens: int) -> Shape:
        """The shape that holds `rows` sequences of `tokens` cache slots (prompt + frames)."""
        return _bucket(rows, self.batch_buckets), _bucket(min(tokens, self.max_len), self.length_buckets)

    def capture_plan(self, first_tokens: Iterable[int]) -> tuple[list[Shape], list[Shape]]:
        """(Shapes to capture before serving, the rest in the order to capture them): first batch 1 at the cache
        lengths of `first_tokens`; then the largest bucket at the longest of those, so that any batch of short
        texts replays a graph (eager frames run ~10x slower); then batch 1 at every other length, so any single
        request is graphed; then the other buckets at the first lengths, then everything else."""
        common = {self.shape(1, tokens)[1] for tokens in first_tokens}
        first = [(1, length) for length in sorted(common)]
        cover = [(self.max_batch, max(common))] if self.max_batch > 1 else []
        rest = sorted(((rows, length) for rows in self.batch_buckets for length in self.length_buckets
                       if (rows, length) not in first + cover),
                      key=lambda s: (s[0] > 1, s[0] > 1 and s[1] not in common, s[0], s[1]))
        return first, cover + rest

    def capture(self, shape: Shape) -> None:
        """Compile and capture `shape`'s frame, replacing its eager graph if it has one (idempotent; no-op without
        graphs). Compiling, warming up (on scratch buffers) and recording run while generations go on; only the
        swap waits for a frame being launched."""
        if not self.use_graphs or shape in self._compiled_graphs or (shape in self._graphs and not self.compiled):
            return
        with self._capture_lock:
            self._compile(shape)
            self._record(shape)

    def capture_eager(self, shape: Shape) -> None:
        """Capture `shape`'s uncompiled frame: no Inductor, a fraction of a second (no-op if it has a graph)."""
        if not self.use_graphs or shape in self._graphs:
            return
        with self._capture_lock:
            self._warm_up(shape, compiled=False)
            self._record(shape, compiled=False)

    def _compile(self, shape: Shape) -> None:
        """Compile `shape`'s frame by running it (see `_warm_up`)."""
        if shape in self._ready:
            return
        self._warm_up(shape, compiled=True)
        self._ready.add(shape)

    def _warm_up(self, shape: Shape, *, compiled: bool) -> None:
        """Run `shape`'s frame twice on scratch buffers, on a side stream (`compiled`: the first call compiles)."""
        with torch.inference_mode():
            scratch = self.buffers.scratch()
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(2):
                    self._frame(scratch, *shape, compiled=compiled)
            side.synchronize()

    def _record(self, shape: Shape, *, compiled: bool = True) -> None:
        """Record a graph for `shape` while generations go on, then swap it in between two frames (holding
        `_generating` through a recording, 0.2-0.5 s, stalled the loop at each of the background's captures)."""
        if shape in self._compiled_graphs or (shape in self._graphs and not compiled):
            return
        graph = self._new_graph(shape, compiled=compiled)
        with self._generating:
            self._swap_in(shape, graph, compiled=compiled)

    def _swap_in(self, shape: Shape, graph: torch.cuda.CUDAGraph, *, compiled: bool) -> None:
        """`graph` replays `shape` from now on; caller holds `_generating` (CUDA frees a replaced graph once run)."""
        self._graphs[shape] = graph
        if compiled and self.compiled:
            self._compiled_graphs.add(shape)

    def _new_graph(self, shape: Shape, *, compiled: bool) -> torch.cuda.CUDAGraph:
        """Record `shape`'s frame on the real buffers (nothing executes)."""
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        self._family.record(graph, lambda: self._frame(self.buffers, *shape, compiled=compiled), pool=self._pool)
        return graph

    def serve_batch(self) -> None:
        """A continuous batch's loop starts: lower the interpreter's thread switch interval for good. The loop's
        thread is every row's critical path, and it gives the GIL up at each graph replay and stream wait; with
        the default 5 ms interval, a thread decoding speech or preparing a prompt kept it waiting up to 5 ms each
        time it wanted the GIL back, several times per frame."""
        self.serving = True
        if self.device.type == "cuda":  # a CPU run (tests) leaves the process as it is
            sys.setswitchinterval(min(sys.getswitchinterval(), background.SERVING_SWITCH_INTERVAL_S))

    def graph_status(self) -> dict[str, object]:
        """For health: graphs by kind, whether a background capture runs, and which shapes failed and why."""
        return dict(compiled=len(self._compiled_graphs), eager=len(self._graphs) - len(self._compiled_graphs),
                    capturing=self._background,
                    failed={f"{rows}x{length}": why for (rows, length), why in sorted(self._failed.items())})

    def capture_in_background(self, shapes: Sequence[Shape], *, eager: Sequence[Shape] = (),
                              before: Callable[[], object] | None = None,
                              after: Callable[[], object] | None = None) -> threading.Thread | None:
        """On a daemon thread, run `before` (other graphs every request uses, such as the speech decoder's),
        capture `eager` uncompiled (seconds), then compile and capture `shapes`, each compiled graph replacing that
        shape's eager one; generations never wait for a compilation or a recording (`_plan`, `_record`). `after`
        runs on that thread once all are tried. The switch interval is lowered meanwhile: compiling holds the GIL
        for long stretches. At exit the thread stops after the shape in hand (`background.stop_all`)."""
        return background.start(self, shapes, eager=eager, before=before, after=after) if self.use_graphs else None

    def _plan(self, rows: int, length: int) -> tuple[int, Callable[[], None]]:
        """The batch bucket a generation runs in and how it advances a frame (`_generating` held): without a
        background capture it captures its shape first (unless that failed before); then the best captured graph
        that holds it (compiled before eager, then the smallest); else eager frames (compiled if its shape is)."""
        shape = (rows, length)
        if not self.use_graphs:
            return rows, lambda: self._frame(self.buffers, rows, length, compiled=self.compiled)
        # Not if another capture holds the lock: it may be waiting for this generation's `_generating`.
        if shape not in self._graphs and not self._background and shape not in self._failed \
                and self._capture_lock.acquire(blocking=False):
            try:
                self._compile(shape)
                self._swap_in(shape, self._new_graph(shape, compiled=True), compiled=True)
            finally:
                self._capture_lock.release()
        holding = [s for s in self._graphs if s[0] >= rows and s[1] >= length]
        if holding:
            best = min(holding, key=lambda s: (s not in self._compiled_graphs, s[0] * s[1], s))
            return best[0], self._graphs[best].replay
        compiled = shape in self._ready
        return rows, lambda: self._frame(self.buffers, rows, length, compiled=compiled)

    # -- generation ----------------------------------------------------------------------------------------
    def stage(self, inputs: TalkerInputs) -> StagedPrompt:
        """Prefill a prompt on the calling thread (`staging.py`), for `join` to copy into a slot later."""
        return self.stager.stage(inputs)

    def _prefill(self, inputs: TalkerInputs, rows: slice, settings: DecodeSettings, seeds: torch.Tensor) -> int:
        """Stock talker forward over the prompt of `inputs` (one row per slot of `rows`; fewer are padded with
        copies of the last, their output dropped), then its state into those slots (`_install`)."""
        real, count = inputs.inputs_embeds.shape[0], rows.stop - rows.start
        if count > real:
            pick = torch.cat((torch.arange(real), torch.full((count - real,), real - 1))).to(self.device)
            inputs = TalkerInputs(inputs.inputs_embeds[pick], inputs.attention_mask[pick],
                                  inputs.trailing_text_hidden[pick], inputs.tts_pad_embed)
        staged = self.stager._forward(inputs)
        return self._install(staged, rows, settings, seeds, real=real)

    def _install(self, staged: StagedPrompt, rows: slice, settings: DecodeSettings, seeds: torch.Tensor, *,
                 real: int) -> int:
        """A prefilled prompt's K/V, masks, text, sampler state, each row's 32-bit seed (`seeds`) and first token
        into the slots of `rows` (rows past `real` are padding, finished at once); the other slots are left as
        they are. Returns the prompt's length."""
        b, inputs, length, count = self.buffers, staged.inputs, staged.length, rows.stop - rows.start
        mask, trailing = inputs.attention_mask, inputs.trailing_text_hidden
        self._set_eos(settings.eos)
        for keys, values, kv in zip(staged.keys, staged.values, b.talker_cache):
            kv[0, rows, :, :length].copy_(keys)
            kv[1, rows, :, :length].copy_(values)
        b.valid[rows].zero_()
        b.valid[rows, :length].copy_(mask.bool())
        b.rope_delta[rows, 0].copy_(-(mask == 0).sum(-1))
        b.trailing[rows].copy_(inputs.tts_pad_embed.expand(count, self.max_len, -1))
        b.trailing[rows, :trailing.shape[1]].copy_(trailing)
        b.talker_slots.fill(settings.talker, self.vocab, rows)
        b.predictor_slots.fill(settings.predictor, self.predictor.config.vocab_size, rows)
        b.min_new_tokens[rows] = settings.min_new_tokens
        b.seed[rows].copy_(seeds)
        b.seen[rows].zero_()
        b.finished[rows].zero_()
        b.finished[rows.start + real:rows.stop] = True
        ban = b.suppress + (b.eos_ban if settings.min_new_tokens > 0 else 0.0)
        first = choose_tokens(staged.logits, b.talker_slots.view(rows), count, ban=ban, seen=b.seen[rows],
                              noise=row_noise(b.seed[rows], torch.zeros_like(b.seed[rows]), self.vocab))
        broken = banned_choice(ban.expand(count, -1), first)
        b.finished[rows] |= broken
        first = torch.where(broken, b.filler, first)
        b.seen[rows].scatter_(1, first[:, None], True)
        b.token[rows].copy_(first)
        b.past_hidden[rows].copy_(staged.past_hidden)
        b.step[rows] = 0
        b.position[rows] = length
        return length

    def join(self, slot: int, staged: StagedPrompt, settings: DecodeSettings, seed: int) -> int:
        """Copy one staged prompt (`stage`, one row) into batch slot `slot` while the other slots keep their
        state: it decodes from the next frame on, at its own positions. Returns its prompt length. The caller
        holds `_generating` (`ContinuousBatch`) and runs on the decode loop's stream, which first waits for the
        staging stream; the staged tensors are then marked in use by it (no early reuse of their memory)."""
        with torch.inference_mode():
            stream = torch.cuda.current_stream(self.device) if self.device.type == "cuda" else None
            if staged.ready is not None:
                stream.wait_event(staged.ready)
            seeds = torch.tensor([seed & 0xFFFFFFFF], dtype=torch.long).to(self.device, non_blocking=True)
            length = self._install(staged, slice(slot, slot + 1), settings, seeds, real=1)
            staged.release(stream)
            return length

    def frames(self, inputs: TalkerInputs, settings: DecodeSettings, *, chunks: Sequence[int] = (),
               on_frame: Callable[[int], None] | None = None) -> Iterator[torch.Tensor]:
        """Decode, yielding new frames (real rows x n x 16 codes, on the device) in chunks of the sizes in
        `chunks` (the last size repeats; empty: one chunk at the end). Rows that hit EOS keep running until all
        have, like stock generate; callers cut each row at its first EOS (`trim_at_eos`).

        `on_frame(done)` is called after every frame with the frames done so far (of `max_new_tokens - 1`); on
        CUDA the count runs at most `eos_check_every` frames ahead of the GPU (the EOS check waits for it)."""
        real, prompt = inputs.inputs_embeds.shape[0], inputs.inputs_embeds.shape[1]
        budget = settings.max_new_tokens - 1  # stock: the last sampled token never becomes a frame
        if real > self.max_batch or prompt + budget > self.max_len:
            raise ValueError(f"batch {real} x {prompt + budget} tokens exceeds the fast decoder's "
                             f"{self.max_batch} x {self.max_len}")
        rows, length = self.shape(real, prompt + budget + 1)
        sizes = list(chunks) or [budget]
        codes = self.buffers.codes
        with self._generating:
            if self.rows_in_use:
                raise RuntimeError("a static generation cannot run while the continuous batch decodes")
            # Inference mode per segment, never across a `yield` (thread-local state the caller would inherit).
            with torch.inference_mode():
                rows, advance = self._plan(rows, length)
                # one seed per row from the default generator: `torch.manual_seed` repeats a whole batch
                seeds = torch.randint(0, 2**32, (rows,), dtype=torch.long).to(self.device)
                self._prefill(inputs, slice(0, rows), settings, seeds)
            done = emitted = 0
            while done < budget:
                with torch.inference_mode():
                    advance()
                    done += 1
                    last = done == budget
                    stop = (last or done % self.eos_check_every == 0) and bool(self.buffers.finished[:real].all())
                    due = done - emitted >= sizes[0]
                    new = codes[:real, emitted:done].clone() if stop or last or due else None
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
