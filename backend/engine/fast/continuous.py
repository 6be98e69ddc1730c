"""Continuous (iteration-level) batching: requests join and leave a running decode at frame boundaries.

A static batch runs until its longest row ends, and whatever arrives meanwhile waits for all of it. Here every
batch slot is at its own point of its own generation (per-row frame counts, cache positions and seeds in
`DecodeBuffers`), so between two frames the loop can prefill a new request into a free slot and drop a row that
has finished. The batch then moves between the decoder's buckets (one CUDA graph per batch bucket and cache
length) as its size changes: rows are kept packed in slots 0..n-1, a leaving row's slot taking the last row.

One thread, the scheduler's, owns the loop and is the only one that touches the decode buffers; requests reach
it through a locked queue and get their codes back through a `Future` (and, streaming, chunk callbacks). A
request's prompt is prefilled on its own thread before it queues (`staging.py`): the loop only copies it into a
slot, so newcomers cost the running rows a few copies, not a talker forward each. On CUDA the loop runs on its
own high-priority stream, so its frames go ahead of the other threads' GPU work (prefills, speech decoding,
watermarking). Codes leave the loop as host copies (a few KB): a device tensor made on the loop's stream and
freed on a consumer's could be handed back to the loop by the caching allocator while the consumer's kernels
still read it, and decode another request's frames as garbage codes. A row's
codes do not depend on its neighbours: attention reads only the row's own cache slots, and its random numbers are
a hash of its own seed and draw counter (`sampling.row_noise`), so a seeded request samples the same codes in any
company, and greedy decoding gives stock qwen-tts's codes for every row whoever joins or leaves.

EOS is known on the host only when it looks (a device sync): every `eos_check_every` frames, whenever a stream
owes a chunk and whenever a row reaches its budget. A row that sampled EOS in between keeps its slot until then
(its later frames are EOS fillers, cut off like stock generate cuts them). The loop stays at most two frames
ahead of the GPU and waits for it without the GIL before it looks (`pacing.py`): otherwise the threads that
decode and watermark the streams' audio crawl while it waits.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field, replace

import structlog
import torch

from backend.engine.fast.decoder import FastDecoder, trim_at_eos
from backend.engine.fast.pacing import FramePacer
from backend.engine.fast.sampling import DecodeSettings
from backend.engine.fast.staging import StagedPrompt, TalkerInputs

log = structlog.get_logger(__name__)
ChunkSink = Callable[[torch.Tensor], None]  # new codes (n x 16, on the host), called on the scheduler thread
FrameSink = Callable[[int], None]  # frames this request has done, called on the scheduler thread


def row_seed(seed: int | None) -> int:
    """The 32-bit noise seed of a request: its own seed reduced to 32 bits (seeds equal modulo 2**32 sample
    alike), or a fresh one from the OS (unseeded requests differ in every process, snapshot-restored or not)."""
    return secrets.randbits(32) if seed is None else seed % 2**32


@dataclass(frozen=True)
class LoopStats:
    """The decode loop's state and counters: `steps` frames of the whole batch, `frames` rows' frames in them
    (frames / steps: the mean batch), and the loop's own seconds: joining newcomers, stepping (launching a
    frame), looking (the host waiting for the GPU at EOS and chunk checks, and handing codes on)."""

    active: int = 0
    waiting: int = 0
    max_batch: int = 0
    steps: int = 0
    frames: int = 0
    joins: int = 0
    join_s: float = 0.0
    step_s: float = 0.0
    look_s: float = 0.0


@dataclass(eq=False)
class DecodeJob:
    """One request's decode: a one-row prompt, its settings and noise seed; `chunks` are streaming chunk sizes
    in frames (the last repeats; empty: the whole clip only). Callbacks run on the scheduler thread and must be
    cheap (hand the codes on); one that raises fails its own request only."""

    inputs: TalkerInputs
    settings: DecodeSettings
    seed: int
    chunks: Sequence[int] = ()
    on_chunk: ChunkSink | None = None
    on_frame: FrameSink | None = None
    future: Future[torch.Tensor] = field(default_factory=Future)  # all codes, cut at EOS
    staged: StagedPrompt | None = None  # its prompt prefilled (by `submit`), until it joins
    queued: float = field(default_factory=time.perf_counter)
    joined: float = 0.0  # when its prompt was prefilled into a slot (perf_counter)
    first_chunk: float = 0.0  # when its first chunk of codes was handed on (streams)
    ended: float = 0.0  # when its codes were complete
    peak_rows: int = 1  # the most rows it decoded alongside, itself included
    cancelled: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None  # a callback raised: it leaves with this error
    slot: int = -1
    prompt: int = 0
    done: int = 0  # frames generated
    emitted: int = 0  # frames handed to on_chunk

    @property
    def budget(self) -> int:
        """Frames it may generate: stock generate never turns the last sampled token into a frame."""
        return self.settings.max_new_tokens - 1

    def result(self, cancel: threading.Event | None = None, poll_s: float = 0.05) -> torch.Tensor:
        """Its codes once decoded; given up (CancelledError) once `cancel` is set (the caller's deadline passed
        or it went away: `cancel` the job then, to free its slot)."""
        if cancel is None:
            return self.future.result()
        while not cancel.is_set():
            try:
                return self.future.result(timeout=poll_s)
            except TimeoutError:
                continue
        raise CancelledError("the caller gave up")

    def cancel(self) -> None:
        """Stop at the next frame boundary (its slot goes to the next request); its future gets CancelledError."""
        self.cancelled.set()
        self.future.cancel()  # succeeds while it is still queued


class ContinuousBatch:
    """The decode loop of one `FastDecoder`, fed from a queue; started by the first `submit`."""

    def __init__(self, decoder: FastDecoder) -> None:
        self.decoder = decoder
        self._waiting: deque[DecodeJob] = deque()
        self._active: list[DecodeJob] = []  # job i sits in slot i
        self._joining = 0  # taken from the queue, not prefilled yet
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._since_check = 0
        self._stats = LoopStats()
        self.pacer = FramePacer()  # frames in flight on the GPU (given events on CUDA, when the loop starts)

    def submit(self, job: DecodeJob) -> Future[torch.Tensor]:
        """Prefill `job`'s prompt on the calling thread, then queue it; it joins the running decode at the next
        frame boundary with a free slot."""
        prompt = job.inputs.inputs_embeds.shape
        if prompt[0] != 1 or prompt[1] + job.budget + 1 > self.decoder.max_len:
            raise ValueError(f"one request of {prompt[1]} + {job.budget} tokens exceeds the fast decoder's "
                             f"{self.decoder.max_len} cache slots")
        if self._closed:
            raise RuntimeError("the decode loop is closed")
        job.staged = self.decoder.stage(job.inputs)
        with self._wakeup:
            if self._closed:
                raise RuntimeError("the decode loop is closed")
            self._waiting.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fast-continuous-batch", daemon=True)
                self._thread.start()
            self._wakeup.notify()
        return job.future

    def stats(self) -> LoopStats:
        """Rows decoding and requests queued or joining now, and the loop's counters since it started (health,
        benchmarks: where its time went)."""
        with self._wakeup:
            return replace(self._stats, active=len(self._active), waiting=len(self._waiting) + self._joining,
                           max_batch=self.decoder.max_batch)

    def close(self) -> None:
        """Finish every accepted job, then stop the thread."""
        with self._wakeup:
            self._closed = True
            self._wakeup.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    # -- the scheduler thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        cuda = self.decoder.device.type == "cuda"
        self.decoder.serve_batch()
        if cuda:
            self._stream = torch.cuda.Stream(self.decoder.device, priority=-1)  # -1: high priority
            torch.cuda.set_stream(self._stream)
            self.pacer.make_fence = torch.cuda.Event
        while True:
            with self._wakeup:
                if not self._active and not self._waiting:
                    self._idle(cuda)
                if not self._active and not self._waiting:
                    return  # closed and drained
                free = self.decoder.max_batch - len(self._active)
                joining = [self._waiting.popleft() for _ in range(min(free, len(self._waiting)))]
                self._joining = len(joining)
            for job in joining:
                self._join(job)
            if self._active:
                try:
                    self._step()
                except Exception as error:  # noqa: BLE001 - the loop outlives any failure; its rows fail
                    log.error("fast.batch_failed", rows=len(self._active), error=repr(error), exc_info=error)
                    for job in self._active:
                        _fail(job, error)
                    self._active.clear()
                    self._leave([])  # every slot free and harmless again

    def _idle(self, cuda: bool) -> None:
        """Wait for work (the caller holds `_wakeup`). On CUDA nothing of the loop's stays queued on its stream
        meanwhile (a static generation may use the buffers on another stream), and when work comes the loop's
        stream first waits for what the default stream had queued."""
        if cuda:
            self.pacer.drain()
            self._stream.synchronize()
        while not self._active and not self._waiting and not self._closed:
            self._wakeup.wait()
        if cuda:
            self._stream.wait_stream(torch.cuda.default_stream(self.decoder.device))

    def _join(self, job: DecodeJob) -> None:
        """Copy `job`'s staged prompt into the next free slot (it stops counting as joining in the step it
        becomes active)."""
        started, joined = time.perf_counter(), False
        try:
            if job.future.set_running_or_notify_cancel():  # else cancelled while queued
                with self.decoder._generating:
                    staged = job.staged or self.decoder.stage(job.inputs)
                    job.prompt = self.decoder.join(len(self._active), staged, job.settings, job.seed)
                joined = True
        except Exception as error:  # noqa: BLE001 - this request's own failure
            _fail(job, error)
        with self._wakeup:
            self._joining -= 1
            if joined:
                job.slot, job.joined = len(self._active), time.perf_counter()
                job.staged = None  # its K/V copies are the slot's now
                self._active.append(job)
                self.decoder.rows_in_use = len(self._active)
                self._count(joins=1, join_s=job.joined - started)

    def _step(self) -> None:
        """One frame for every active row, then whatever the host must look at: chunks, EOS, budgets."""
        decoder, active = self.decoder, self._active
        started = time.perf_counter()
        tokens = max(job.prompt + job.done for job in active) + 1
        with decoder._generating, torch.inference_mode():
            _, advance = decoder._plan(*decoder.shape(len(active), tokens))
            advance()
        self.pacer.queued()
        self._since_check += 1
        stepped = time.perf_counter()
        self._count(steps=1, frames=len(active), step_s=stepped - started)
        for job in active:
            job.done += 1
            job.peak_rows = max(job.peak_rows, len(active))
            if job.on_frame is not None:
                _call(job, job.on_frame, job.done)
        owed = [job for job in active if job.chunks and job.done - job.emitted >= _chunk(job)]
        at_budget = any(job.done >= job.budget for job in active)
        if not (owed or at_budget or self._since_check >= decoder.eos_check_every or any(
                job.cancelled.is_set() or job.error is not None for job in active)):
            return
        self._since_check = 0
        self.pacer.drain()
        finished = decoder.buffers.finished[:len(active)].tolist()
        leaving: dict[DecodeJob, torch.Tensor | None] = {}  # -> its codes, or None: it failed or was cancelled
        chunks: list[tuple[DecodeJob, torch.Tensor]] = []  # host copies, handed on after the slots are free
        for job in active:
            if job.error is None and (finished[job.slot] or job.done >= job.budget):
                leaving[job] = self._finish(job, chunks)
            elif job in owed and job.error is None:
                chunks.append((job, self._take(job, decoder.buffers.codes[job.slot, job.emitted:job.done], job.done)))
            if job.error is not None or job.cancelled.is_set():
                leaving[job] = None
        self._leave(list(leaving))
        for job, codes in chunks:
            if job.on_chunk is not None:
                _call(job, job.on_chunk, codes)
        for job, codes in leaving.items():  # answered once its slot is free
            if job.error is not None:
                _fail(job, job.error)
            elif codes is None:
                _fail(job, CancelledError())
            elif not job.future.done():
                job.future.set_result(codes)
        self._count(look_s=time.perf_counter() - stepped)

    def _count(self, **add: float) -> None:
        stats = self._stats
        self._stats = replace(stats, **{name: getattr(stats, name) + value for name, value in add.items()})

    def _finish(self, job: DecodeJob, chunks: list[tuple[DecodeJob, torch.Tensor]]) -> torch.Tensor:
        """The row's codes cut at EOS (its last chunk, if it streams and one is owed, added to `chunks`)."""
        codes = trim_at_eos(self.decoder.buffers.codes[job.slot:job.slot + 1, :job.done], job.settings.eos)[0]
        codes, job.ended = codes.to("cpu", copy=True), time.perf_counter()
        if job.chunks and codes.shape[0] > job.emitted:
            chunks.append((job, self._take(job, codes[job.emitted:], codes.shape[0])))
        return codes

    @staticmethod
    def _take(job: DecodeJob, codes: torch.Tensor, upto: int) -> torch.Tensor:
        """A host copy of the job's next chunk of codes (up to frame `upto`; the copy waits for the loop's
        stream to make them), its chunk schedule moved on."""
        job.first_chunk = job.first_chunk or time.perf_counter()
        job.emitted = upto
        job.chunks = job.chunks[1:] or job.chunks
        return codes.to("cpu", copy=True)  # a copy on the CPU too: the buffer moves on

    def _leave(self, leaving: list[DecodeJob]) -> None:
        """Free the slots of `leaving`: the last row moves into each, so rows stay packed from slot 0."""
        buffers = self.decoder.buffers
        for job in sorted(leaving, key=lambda job: job.slot, reverse=True):
            last = self._active.pop()
            if last is not job:
                with torch.inference_mode():
                    buffers.move(last.slot, job.slot)
                last.slot = job.slot
                self._active[job.slot] = last
        self.decoder.rows_in_use = len(self._active)
        with torch.inference_mode():  # slots past the batch run in its bucket's padding: keep them harmless
            free = slice(len(self._active), None)
            buffers.finished[free] = True
            buffers.step[free] = 0
            buffers.position[free] = 0


def _chunk(job: DecodeJob) -> int:
    return job.chunks[0]


def _call(job: DecodeJob, sink: Callable, value: object) -> None:
    """A callback that raises fails its own request (at the next look), never the batch."""
    if job.error is not None:
        return
    try:
        sink(value)
    except Exception as error:  # noqa: BLE001
        log.warning("fast.callback_failed", error=repr(error))
        job.error = error


def _fail(job: DecodeJob, error: BaseException) -> None:
    if not job.future.done():
        job.future.set_exception(error)
