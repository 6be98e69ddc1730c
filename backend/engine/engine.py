"""The Qwen3-TTS voice-clone engine on top of qwen-tts's own loader and generate.

One instance owns one loaded model. On the fast path every request, from any thread, joins the fast engine's
continuous batch (`backend.engine.fast.continuous`): it decodes alongside whatever else is decoding, joining and
leaving at frame boundaries, so concurrent callers share the GPU without waiting for each other's clips. The
stock path (qwen-tts's own `generate`, which runs a batch to its end) is serialised by a lock and batches only
what one `clone_batch` call hands it. Every clip is watermarked (`backend.watermark`) before it leaves; checking
a clip for the mark needs no TTS model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from backend.audio import to_wav
from backend.engine.attention import active_attention, check_attention
from backend.engine.config import EngineConfig
from backend.engine.device import gpu_memory, gpu_name, resolve_device, resolve_dtype, versions
from backend.engine.prefetch import prefetch_checkpoint
from backend.engine.progress import ProgressReporter, ProgressSink
from backend.engine.qwen_imports import import_qwen_tts
from backend.engine.voice_cache import VoiceCache, clip_sha256, voice_key
from backend.errors import EngineConfigError
from backend.intake import load_reference
from backend.languages import AUTO, normalize_language
from backend.schema import (
    SAMPLE_RATE, CloneRequest, CloneResult, FastBatch, HealthReport, Timings, WatermarkCheck,
)
from backend.validation import check_text
from backend.watermark import StreamMarker, Watermarker, detect, shared_watermarker

log = structlog.get_logger(__name__)
SAMPLES_PER_FRAME = 1920  # 24 kHz / 12.5 frames per second


@dataclass
class _Prepared:
    """A validated request with its voice prompt resolved (from cache or freshly encoded)."""

    text: str
    language: str
    prompt: Any
    cached: bool
    clone_s: float
    max_new_tokens: int


def _generations(requests: Sequence[CloneRequest]) -> list[tuple[int | None, list[int]]]:
    """Which requests a stock generation runs together, as (seed, indices): the unseeded ones in one generation,
    each seeded one alone. A stock generation draws from one random stream, so a seed only repeats its audio
    when its request is the stream's only row. (The fast path needs none of this: each row draws from its own
    seed, see `continuous.row_seed`.)"""
    unseeded = [index for index, request in enumerate(requests) if request.seed is None]
    seeded = [(request.seed, [index]) for index, request in enumerate(requests) if request.seed is not None]
    return ([(None, unseeded)] if unseeded else []) + seeded


class Engine:
    """Loads a Qwen3-TTS Base checkpoint and clones voices with a cached voice prompt per reference clip."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.device = ""
        self.tts: Any = None
        self._lock = threading.RLock()
        self._cache = VoiceCache(config.voice_cache_size)
        self._started = time.monotonic()
        self._load_s = 0.0
        self._served = 0
        self._decode_s = 0.0
        self._fast: Any = None  # backend.engine.fast.FastTTS when the fast mode runs
        self._loaded = False  # set last, after the fast decoder: `tts` alone does not mean ready
        self._fallback_reason: str | None = None  # why "auto" on CUDA serves with stock
        self._compile_cache: Any = None  # backend.engine.compile_cache.CompileCache when configured
        self._watermarker: Watermarker | None = None  # on the model's device once loaded
        # fast shapes for start_background_capture: (eager-captured at load, not captured yet)
        self._pending_shapes: tuple[list[tuple[int, int]], list[tuple[int, int]]] | None = None

    @property
    def engine_mode(self) -> str:
        """The decode path that really runs: "fast" or "stock"."""
        return "fast" if self._fast is not None else "stock"

    # -- loading -----------------------------------------------------------------------------------------
    def load(self, *, start_background: bool = True) -> None:
        """Load the model once (idempotent). Raises `EngineConfigError` for impossible configurations. With
        `fast_capture="background"` the remaining graphs are then captured on a thread while requests are served,
        unless `start_background` is False (a Modal memory snapshot follows: call `start_background_capture`
        after the restore)."""
        if self._loaded:  # no lock once loaded, so health() never waits behind a running generation
            return
        with self._lock:
            if self._loaded:
                return
            prefetch = prefetch_checkpoint(self.config.model)  # before the imports, which it overlaps
            import torch

            Qwen3TTSModel = import_qwen_tts()  # noqa: N806 - a class
            device = resolve_device(self.config.device)
            attention = check_attention(self.config.attention, device)
            source = self.config.model
            if source.startswith((".", "/", "~")) and not Path(source).expanduser().is_dir():
                raise EngineConfigError(f"model directory {source!r} does not exist.", code="model_missing")
            started = time.perf_counter()
            log.info("engine.loading", model=source, device=device, attention=attention)
            self._watermarker = shared_watermarker(device)
            # The watermarker (its imports, weights and a first mark: 2.3-4.4 s of a container's start on one H200)
            # loads beside the model's weights and graphs, most of which wait on the disk or the GPU; joined before
            # `load` returns, so no thread outlives a memory snapshot and a failure surfaces here.
            with ThreadPoolExecutor(1, thread_name_prefix="watermark-load") as side:
                watermarker = side.submit(self._watermarker.load)
                self.tts = Qwen3TTSModel.from_pretrained(
                    str(Path(source).expanduser()) if Path(source).expanduser().is_dir() else source,
                    device_map=device, dtype=resolve_dtype(self.config.dtype, device), attn_implementation=attention,
                )
                self.device = device
                self._time_decode()
                self._fast = self._load_fast(device)
                watermarker.result()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if prefetch is not None:  # done by now (the weights were read); no thread outlives a memory snapshot
                prefetch.join()
            self._load_s = time.perf_counter() - started
            self._loaded = True
            log.info("engine.loaded", seconds=round(self._load_s, 2), attention=active_attention(self.tts.model))
            if start_background:
                self.start_background_capture()

    def _load_fast(self, device: str) -> Any:
        """The fast decoder for "fast", or for "auto" on CUDA; "auto" falls back to stock if it cannot start
        (e.g. no C compiler for Triton, a failed graph capture) and keeps the reason for health."""
        mode = self.config.engine_mode
        if mode == "stock" or (mode == "auto" and not device.startswith("cuda")):
            return None
        from backend.engine.compile_cache import open_compile_cache
        from backend.engine.fast import FastTTS

        try:
            self._compile_cache = open_compile_cache(self.config, self.tts.model, device)
            fast = FastTTS(self.tts, max_batch=self.config.fast_max_batch,
                           max_len=self.config.max_new_tokens_cap + self.config.fast_prompt_slots)
            # A compiled capture costs a compilation (seconds; less from the compile cache) and the capture, an
            # eager one a fraction of a second: batch 1 at the common lengths is paid here, the rest per
            # `fast_capture` ("background": eager graphs now, compiled ones swapped in by the background thread).
            first, rest = fast.decoder.capture_plan(self.config.fast_ready_lengths)
            everything = self.config.fast_capture == "all"
            background = self.config.fast_capture == "background"
            for shape in first + (rest if everything else []):
                (fast.decoder.capture_eager if background else fast.decoder.capture)(shape)
            # the prompt prefill's and the speech decoder's graphs (no Inductor): with "background", those a lone
            # request uses now and the rest on the background thread
            if background:
                fast.capture_first_graphs(self.config.fast_ready_lengths)
            else:
                fast.capture_other_graphs()
            self._pending_shapes = (first, rest) if background else None
            if self._compile_cache is not None:
                self._compile_cache.save(complete=everything)
        except Exception as error:
            if mode == "fast":
                raise
            self._fallback_reason = f"fast engine failed to start: {type(error).__name__}: {error}"[:300]
            log.warning("engine.fast_unavailable", error=repr(error), serving="stock")
            return None
        return fast

    def start_background_capture(self) -> threading.Thread | None:
        """On a daemon thread: the prefill's and speech decoder's other graphs and eager graphs for the shapes `load`
        left, then every shape compiled, each compiled graph replacing the eager one; then save the compile cache.
        Requests are served meanwhile, never waiting for a capture or a compile. Call it after a memory snapshot is
        restored (threads do not survive one); a no-op unless `fast_capture` is "background"."""
        if self._fast is None or self._pending_shapes is None:
            return None
        (first, rest), self._pending_shapes = self._pending_shapes, None
        cache = self._compile_cache
        return self._fast.decoder.capture_in_background(
            first + rest, eager=rest, before=self._fast.capture_other_graphs,
            after=(lambda: cache.save(complete=True)) if cache is not None else None)

    def _time_decode(self) -> None:
        """Wrap the speech tokenizer's decode so the codec-to-waveform time is reported apart from generation."""
        tokenizer = self.tts.model.speech_tokenizer
        original = tokenizer.decode

        def timed_decode(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._decode_s += time.perf_counter() - started

        tokenizer.decode = timed_decode

    # -- cloning -----------------------------------------------------------------------------------------
    def clone(self, request: CloneRequest) -> CloneResult:
        """Speak `request.text` in the reference clip's voice."""
        return self.clone_batch([request])[0]

    def clone_batch(self, requests: Sequence[CloneRequest], *, on_progress: ProgressSink | None = None,
                    cancel: threading.Event | None = None) -> list[CloneResult]:
        """Generate several texts (one voice or several). Fast path: each joins the continuous batch with its
        own frame budget and seed, decoding alongside every other caller's requests. Stock path: one batched
        `generate` whose rows share one frame budget (the largest), each row cut to its own budget afterwards;
        a seeded request generates alone with its own seed (see `_generations`).

        `on_progress` hears "cloning" when the voices are prepared, "generating" when generation starts and, on
        the fast path, the frames generated about twice a second (from the decode loop's thread: it must be
        cheap and thread-safe). Setting `cancel` (fast path) makes the requests leave the batch at the next
        frame boundary and this call raise `CancelledError`: a caller past its deadline frees its slots."""
        if not requests:
            return []
        checked = [self._check(request) for request in requests]
        self.load()
        if self._fast is not None:
            return self._clone_continuous(requests, checked, on_progress, cancel)
        with self._lock:
            self.load()
            started = time.perf_counter()
            cold = self._served == 0
            # the stock loop reports no frames: stages only
            reporter = ProgressReporter(on_progress, frame_budget=0, interval_s=self.config.progress_interval_s)
            reporter.stage("cloning")
            prepared = [self._prepare(*item) for item in checked]
            reporter.stage("generating")
            outputs: dict[int, tuple[np.ndarray, int, float, float]] = {}
            for seed, indices in _generations(requests):
                wavs, generate_s, decode_s = self._generate([prepared[i] for i in indices], seed=seed)
                for index, wav in zip(indices, wavs, strict=True):
                    outputs[index] = (wav, len(indices), generate_s, decode_s)
            clips = {index: self._marked_clip(outputs[index][0], item.max_new_tokens)
                     for index, item in enumerate(prepared)}
            self._served += len(requests)
        total_s = time.perf_counter() - started
        return [self._result(item, *clips[index], *outputs[index][1:], total_s, cold)
                for index, item in enumerate(prepared)]

    def _clone_continuous(self, requests: Sequence[CloneRequest], checked: list[tuple[Any, ...]],
                          on_progress: ProgressSink | None, cancel: threading.Event | None) -> list[CloneResult]:
        """`clone_batch` on the fast path: every request a job of the continuous batch."""
        started = time.perf_counter()
        budgets = [item[-1] - 1 for item in checked]
        reporter = ProgressReporter(on_progress, frame_budget=sum(budgets), interval_s=self.config.progress_interval_s)
        reporter.stage("cloning")
        with self._lock:  # the voice cache and the speaker encoder
            cold = self._served == 0
            prepared = [self._prepare(*item) for item in checked]
        reporter.stage("generating")
        done = [0] * len(prepared)

        def on_frame(index: int, frames: int) -> None:  # on the decode loop's thread, one job at a time
            done[index] = frames
            reporter.frames(sum(done))

        jobs = []
        try:
            for index, (item, request) in enumerate(zip(prepared, requests, strict=True)):
                jobs.append(self._fast.submit(
                    item.text, item.language.lower() if item.language != AUTO else "auto", item.prompt,
                    seed=request.seed, max_new_tokens=item.max_new_tokens,
                    on_frame=lambda frames, index=index: on_frame(index, frames)))
            codes = [job.result(cancel) for job in jobs]
        finally:
            for job in jobs:
                job.cancel()  # no-op for a finished job; frees the slot of one left behind by an error
        generated = time.perf_counter()
        # One clip per decode: a padded batch decodes a clip differently from the clip alone, and a seeded request
        # must sound the same in any company. Not under the engine's lock: the speech decoder keeps no state
        # between calls, so requests decode side by side (streams do too) instead of queueing behind each other.
        wavs, sample_rate = [], SAMPLE_RATE
        for item, clip_codes in zip(prepared, codes, strict=True):
            (wav,), sample_rate = self._fast.codes_to_wavs([clip_codes], [item.prompt])
            wavs.append(wav)
        decode_s = time.perf_counter() - generated
        with self._lock:
            self._served += len(requests)
        if sample_rate != SAMPLE_RATE:
            raise EngineConfigError(f"checkpoint produces {sample_rate} Hz, expected {SAMPLE_RATE} Hz.")
        results = []
        for item, job, wav in zip(prepared, jobs, wavs, strict=True):
            audio, frames, watermark_s = self._marked_clip(wav, item.max_new_tokens)
            result = self._result(item, audio, frames, watermark_s, job.peak_rows, job.ended - job.joined + decode_s,
                                  decode_s, 0.0, cold)
            timings = result.timings.model_copy(update={"queue_s": job.joined - job.queued,
                                                        "total_s": time.perf_counter() - started})
            results.append(result.model_copy(update={"timings": timings}))
        log.info("engine.continuous", requests=len(requests), seconds=round(generated - started, 3))
        return results

    def clone_stream(self, request: CloneRequest) -> Iterator[np.ndarray]:
        """Speak `request.text` as watermarked float32 chunks at 24 kHz, yielded as the continuous batch decodes
        them. The request shares the batch with whole-clip ones; a consumer that stops early frees its slot at
        the next frame. Stock qwen-tts cannot stream: there the whole clip comes as one chunk, so every caller
        (the web API, the voice channel player) gets audio from either engine."""
        checked = self._check(request)
        self.load()
        if self._fast is None:
            with self._lock:
                item = self._prepare(*checked)
                (wav,), _, _ = self._generate([item], seed=request.seed)
                self._served += 1
            yield self._marked_clip(wav, item.max_new_tokens)[0]
            return
        with self._lock:
            item = self._prepare(*checked)
        marker = StreamMarker(self._get_watermarker())
        for chunk in self._fast.stream_voice_clone(
                item.text, item.language.lower() if item.language != AUTO else "auto", item.prompt,
                seed=request.seed, max_new_tokens=item.max_new_tokens):
            marked = marker.push(chunk)
            if marked.size:
                yield marked
        rest = marker.finish()
        if rest.size:
            yield rest
        with self._lock:
            self._served += 1

    def validate(self, request: CloneRequest) -> None:
        """Raise the `InvalidInput` that `clone_batch` would, without the model: a batcher calls it so bad input
        is answered at once and never fails a batch of good requests."""
        self._check(request)

    def check_watermark(self, audio: bytes) -> WatermarkCheck:
        """Whether a clip (any format the intake reads) carries this backend's watermark; loads no TTS model."""
        return detect(audio, self._get_watermarker())

    def forget_voices(self, clip_sha256s: Sequence[str]) -> int:
        """Drop the voice prompts made from these reference clips (SHA-256 of `CloneRequest.reference`) from the
        cache; how many were dropped. A request already past `_prepare` still finishes with its prompt."""
        forgotten = self._cache.forget(set(clip_sha256s))
        log.info("engine.voices_forgotten", asked=len(clip_sha256s), forgotten=forgotten)
        return forgotten

    def _get_watermarker(self) -> Watermarker:
        if self._watermarker is None:  # a check before (or without) the model: on the device it would use
            self._watermarker = shared_watermarker(self.device or resolve_device(self.config.device))
        return self._watermarker

    def _check(self, request: CloneRequest) -> tuple[str, np.ndarray, int, str | None, str, str, int]:
        """Validate before taking the model lock, so bad input never waits behind a generation."""
        text = check_text(request.text, self.config.max_text_chars)
        ref_text = request.ref_text.strip() if request.ref_text and request.ref_text.strip() else None
        if ref_text is not None:
            ref_text = check_text(ref_text, self.config.max_text_chars, field="transcript")
        language = normalize_language(request.language)
        reference = load_reference(request.reference, self.config.audio_limits)
        budget = request.max_new_tokens or self.config.frame_budget(text)
        return (clip_sha256(request.reference), reference.samples, reference.sample_rate, ref_text, text, language,
                min(budget, self.config.max_new_tokens_cap))

    def _prepare(self, source, samples, sample_rate, ref_text, text, language, budget) -> _Prepared:
        key = voice_key(samples, sample_rate, ref_text)
        started = time.perf_counter()
        prompt = self._cache.get(key, source)
        cached = prompt is not None
        if prompt is None:
            prompt = self.tts.create_voice_clone_prompt(
                ref_audio=(samples, sample_rate), ref_text=ref_text, x_vector_only_mode=ref_text is None)[0]
            self._cache.put(key, prompt, source)
        return _Prepared(text, language, prompt, cached, time.perf_counter() - started, budget)

    def _generate(self, prepared: list[_Prepared], seed: int | None) -> tuple[list[np.ndarray], float, float]:
        """One stock generation: waveforms, generate and decode seconds."""
        import torch

        if seed is not None:
            torch.manual_seed(seed)
        self._decode_s = 0.0
        started = time.perf_counter()
        wavs, sample_rate = self.tts.generate_voice_clone(
            text=[p.text for p in prepared],
            language=[p.language.lower() if p.language != AUTO else "auto" for p in prepared],
            voice_clone_prompt=[p.prompt for p in prepared],
            max_new_tokens=max(p.max_new_tokens for p in prepared),
        )
        if sample_rate != SAMPLE_RATE:
            raise EngineConfigError(f"checkpoint produces {sample_rate} Hz, expected {SAMPLE_RATE} Hz.")
        return list(wavs), time.perf_counter() - started, self._decode_s

    @staticmethod
    def _whole_frames(wav: np.ndarray, max_new_tokens: int) -> tuple[np.ndarray, int]:
        """Trim the ICL cut's rounding so the clip is exactly frames x 80 ms, and cut a batch row to the frames
        its request would get alone (qwen-tts: the last of `max_new_tokens` sampled tokens is never a frame)."""
        frames = min(int(round(wav.shape[0] / SAMPLES_PER_FRAME)), max_new_tokens - 1)
        exact = np.zeros(frames * SAMPLES_PER_FRAME, dtype=np.float32)
        exact[: min(wav.shape[0], exact.shape[0])] = wav[: exact.shape[0]]
        return exact, frames

    def _marked_clip(self, wav: np.ndarray, max_new_tokens: int) -> tuple[np.ndarray, int, float]:
        """The clip cut to whole frames and watermarked: (samples, frames, seconds the mark took)."""
        audio, frames = self._whole_frames(np.asarray(wav, dtype=np.float32), max_new_tokens)
        started = time.perf_counter()
        marked = self._get_watermarker().mark(audio, SAMPLE_RATE)
        return marked, frames, time.perf_counter() - started

    def _result(self, item: _Prepared, audio: np.ndarray, frames: int, watermark_s: float, batch_size: int,
                generate_s: float, decode_s: float, total_s: float, cold: bool) -> CloneResult:
        return CloneResult(
            audio=to_wav(audio, SAMPLE_RATE), sample_rate=SAMPLE_RATE,
            audio_seconds=frames * SAMPLES_PER_FRAME / SAMPLE_RATE,
            frames=frames, voice_cached=item.cached, cold_start=cold, variant=self.config.variant,
            gpu=gpu_name(self.device), attention=active_attention(self.tts.model), engine_mode=self.engine_mode,
            batch_size=batch_size,
            timings=Timings(clone_s=item.clone_s, generate_s=generate_s - decode_s, decode_s=decode_s,
                            watermark_s=watermark_s, total_s=total_s),
        )

    # -- reporting ---------------------------------------------------------------------------------------
    def languages(self) -> list[str]:
        """Languages the loaded model accepts, in canonical spelling, "Auto" first."""
        self.load()
        supported = self.tts.get_supported_languages() or []
        names = {normalize_language(name) for name in supported}
        return [AUTO] + sorted(names - {AUTO})

    def health(self) -> HealthReport:
        """Model, hardware, versions and counters; loads the model if it is not loaded yet."""
        self.load()
        return HealthReport(
            model=self.config.model, variant=self.config.variant, engine_mode=self.engine_mode,
            fallback_reason=self._fallback_reason, device=self.device,
            gpu=gpu_name(self.device), attention=active_attention(self.tts.model),
            dtype=str(self.tts.model.dtype).removeprefix("torch."), versions=versions(), load_s=self._load_s,
            uptime_s=time.monotonic() - self._started, requests_served=self._served, warm=self._served > 0,
            cache=self._cache.stats(), gpu_memory=gpu_memory(self.device), languages=self.languages(),
            fast_graphs=self._fast.decoder.graph_status() if self._fast is not None else None,
            fast_batch=self._batch_status(),
        )

    def _batch_status(self) -> FastBatch | None:
        if self._fast is None:
            return None
        stats = self._fast.batch.stats()
        return FastBatch(active=stats.active, waiting=stats.waiting, max_batch=stats.max_batch, frames=stats.frames,
                         rows_per_step=stats.frames / stats.steps if stats.steps else 0.0)
