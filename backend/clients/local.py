"""The engine in the bot's own process: no GPU service needed, the default for development and the demo.

Engine calls block for seconds, so each runs in a worker thread (`asyncio.to_thread`) and the bot's event loop
keeps serving other users. Several threads may call at once: the engine validates input before taking its
model lock, so a bad request is rejected without waiting behind a running generation.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import structlog

from backend.clients.base import StageCallback
from backend.errors import BackendFailed, VoicebotError
from backend.schema import CloneRequest, CloneResult, HealthReport
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
                        device=settings.device)


class LocalBackend:
    """`BackendClient` over an in-process `Engine`, created (and torch imported) on the first call."""

    name = "local"

    def __init__(self, settings: BackendSettings, engine: Engine | None = None) -> None:
        self._settings = settings
        self._engine = engine
        self._create_lock = threading.Lock()  # first calls may arrive together: build one engine only

    def _get_engine(self) -> Engine:
        with self._create_lock:
            if self._engine is None:
                from backend.engine import Engine

                self._engine = Engine(engine_config(self._settings))
            return self._engine

    async def _run(self, call: Callable[[Engine], T]) -> T:
        try:
            return await asyncio.to_thread(lambda: call(self._get_engine()))
        except VoicebotError:
            raise
        except Exception as exc:
            log.exception("local.failed")
            raise BackendFailed(f"The local engine failed: {type(exc).__name__}.") from exc

    async def clone(self, request: CloneRequest, on_stage: StageCallback | None = None) -> CloneResult:
        if on_stage is not None:
            await on_stage("cloning")
        return await self._run(lambda engine: engine.clone(request))

    async def clone_batch(self, requests: list[CloneRequest]) -> list[CloneResult]:
        return await self._run(lambda engine: engine.clone_batch(requests))

    async def health(self) -> HealthReport:
        return await self._run(lambda engine: engine.health())

    async def languages(self) -> list[str]:
        return await self._run(lambda engine: engine.languages())

    async def aclose(self) -> None:
        """Drop the engine so its model can be freed; a later call would load a new one."""
        self._engine = None
