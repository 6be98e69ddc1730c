"""The engine in the bot's own process: no GPU service needed, the default for development and the demo.

Engine calls block for seconds, so each runs in a worker thread (`asyncio.to_thread`) and the bot's event loop
keeps serving other users. Single clones go through a `CloneBatcher`: on the fast engine each joins the running
decode at the next frame boundary (continuous batching), so users who ask at the same time share the GPU; it
validates input before queueing, so a bad request is rejected at once, and it puts a deadline (`timeout_s`) on
every clone. The engine's progress reports cross from the generation thread to
the caller's event loop through a `ProgressRelay`.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import structlog

from backend.audio_stream import chunks_in_thread
from backend.batcher import CloneBatcher
from backend.clients.base import AudioChunks, ProgressCallback
from backend.clients.failures import FAILED, from_service
from backend.errors import BackendFailed, VoicebotError
from backend.schema import CloneRequest, CloneResult, HealthReport, Progress, WatermarkCheck
from backend.settings import BackendSettings

if TYPE_CHECKING:
    from backend.engine import Engine, EngineConfig

log = structlog.get_logger(__name__)
T = TypeVar("T")


def engine_config(settings: BackendSettings) -> EngineConfig:
    """The local engine's configuration; for the demo model, builds the random checkpoint on first use."""
    from backend.engine import EngineConfig

    model = settings.model
    if settings.uses_demo_model:
        from backend.engine.checkpoint import build_random_checkpoint, is_checkpoint

        log.warning(
            "local.demo_model",
            message="VOICEBOT_MODEL=demo: the local engine has RANDOM WEIGHTS and speaks noise, not speech. "
            "Set VOICEBOT_MODEL to a Qwen3-TTS Base checkpoint (directory or hub id) for real voices.",
            checkpoint=str(settings.demo_checkpoint),
        )
        if not is_checkpoint(settings.demo_checkpoint):
            build_random_checkpoint("tiny", settings.demo_checkpoint)
        model = str(settings.demo_checkpoint)
    return EngineConfig(model=model, variant="local", attention=settings.attention, dtype=settings.dtype,
                        device=settings.device, engine_mode=settings.engine_mode)


class ProgressRelay:
    """Progress from the generation thread to the caller's event loop: in order, one callback at a time, every
    stage change kept but frame reports of one stage coalesced (the latest wins when the callback is slower
    than the engine); nothing after `close`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: ProgressCallback) -> None:
        self._loop = loop
        self._callback = callback
        self._pending: deque[Progress] = deque()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def post(self, progress: Progress) -> None:
        """From any thread."""
        if not self._closed:
            self._loop.call_soon_threadsafe(self._arrive, progress)

    def close(self) -> None:
        """On the loop: the clone has its answer; reports still in flight are dropped."""
        self._closed = True
        self._pending.clear()

    def _arrive(self, progress: Progress) -> None:
        if self._closed:
            return
        if self._pending and self._pending[-1].stage == progress.stage:
            self._pending[-1] = progress
        else:
            self._pending.append(progress)
        if self._task is None or self._task.done():
            self._task = self._loop.create_task(self._deliver())

    async def _deliver(self) -> None:
        while self._pending:
            progress = self._pending.popleft()
            try:
                await self._callback(progress)
            except Exception:
                log.exception("local.progress_callback_failed", stage=progress.stage)


@contextmanager
def _engine_errors() -> Iterator[None]:
    """Bad input passes through; the engine's own failures (a missing model directory, flash-attn not installed)
    keep their words for operators only (`from_service`); anything else is logged with its traceback and
    becomes a `BackendFailed` the bots can show."""
    try:
        yield
    except VoicebotError as exc:
        error = from_service(exc, "the local engine")
        if error is not exc:
            log.warning("local.failed", code=error.code, detail=error.detail)
        raise error
    except Exception as exc:
        log.exception("local.crashed")
        raise BackendFailed(FAILED, detail=f"the local engine raised {type(exc).__name__}; the traceback is logged") \
            from exc


class LocalBackend:
    """`BackendClient` over an in-process `Engine`, created (and torch imported) on the first call."""

    name = "local"

    def __init__(self, settings: BackendSettings, engine: Engine | None = None) -> None:
        self._settings = settings
        self._engine = engine
        self._batcher: CloneBatcher | None = None
        self._create_lock = threading.Lock()  # first calls may arrive together: build one engine only

    def _get_engine(self) -> Engine:
        with self._create_lock:
            if self._engine is None:
                from backend.engine import Engine

                self._engine = Engine(engine_config(self._settings))
            return self._engine

    def _get_batcher(self) -> CloneBatcher:
        engine = self._get_engine()
        with self._create_lock:
            if self._batcher is None:
                self._batcher = CloneBatcher.for_engine(engine, timeout_s=self._settings.timeout_s)
            return self._batcher

    async def _run(self, call: Callable[[Engine], T]) -> T:
        with _engine_errors():
            return await asyncio.to_thread(lambda: call(self._get_engine()))

    async def clone(self, request: CloneRequest, on_progress: ProgressCallback | None = None) -> CloneResult:
        relay = None if on_progress is None else ProgressRelay(asyncio.get_running_loop(), on_progress)
        try:
            with _engine_errors():
                # The first call may build the demo checkpoint: off the event loop.
                batcher = self._batcher or await asyncio.to_thread(self._get_batcher)
                return await batcher.clone(request, None if relay is None else relay.post)
        finally:
            if relay is not None:
                relay.close()

    async def clone_stream(self, request: CloneRequest) -> AudioChunks:
        """The engine's stream (`Engine.clone_stream`) from a thread of its own, under VOICEBOT_TIMEOUT_S; bad
        input is raised before the first chunk (the engine checks it first). The request joins the continuous
        batch like a clone."""
        with _engine_errors():
            # The first call may build the demo checkpoint: off the event loop.
            engine = self._engine or await asyncio.to_thread(self._get_engine)
            async for chunk in chunks_in_thread(lambda: engine.clone_stream(request),
                                                timeout_s=self._settings.timeout_s):
                yield chunk

    async def clone_batch(self, requests: list[CloneRequest]) -> list[CloneResult]:
        return await self._run(lambda engine: engine.clone_batch(requests))

    async def health(self) -> HealthReport:
        return await self._run(lambda engine: engine.health())

    async def languages(self) -> list[str]:
        return await self._run(lambda engine: engine.languages())

    async def check_watermark(self, audio: bytes) -> WatermarkCheck:
        """Through the engine's watermarker if there is an engine; otherwise the process's CPU one, so a check
        never builds an engine or loads the TTS model."""
        from backend.watermark import detect, shared_watermarker

        engine = self._engine
        with _engine_errors():
            if engine is not None:
                return await asyncio.to_thread(engine.check_watermark, audio)
            return await asyncio.to_thread(detect, audio, shared_watermarker("cpu"))

    async def forget_voices(self, clip_sha256s: list[str]) -> int:
        """Without an engine nothing is cached, so nothing to drop (and no engine is built to find that out). The
        digests are validated and lowercased as the remote backends' are."""
        from backend.wire import forget_batches

        digests = [digest for batch in forget_batches(clip_sha256s) for digest in batch]
        engine = self._engine
        if engine is None:
            return 0
        with _engine_errors():
            return await asyncio.to_thread(engine.forget_voices, digests)

    async def aclose(self) -> None:
        """Finish the clone jobs already accepted (clones asked for meanwhile are refused), then drop the engine
        so its model can be freed; a later call would load a new one."""
        if self._batcher is not None:
            await self._batcher.aclose()
        self._batcher = self._engine = None
