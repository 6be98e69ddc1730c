"""The one async interface every backend (local engine, Modal, HTTP) implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, runtime_checkable

import numpy as np

from backend.schema import CloneRequest, CloneResult, HealthReport, Progress, WatermarkCheck

# Called by a backend as a job moves from encoding the voice to generating speech and, where the backend
# counts them, as frames are generated (about twice a second), so the bots can edit their progress message.
# Backends that cannot tell the stages apart report `Progress(stage="cloning")` once. Reports arrive in order,
# never two at once; a callback that raises never fails the clone.
ProgressCallback = Callable[[Progress], Awaitable[None]]
# Speech as it is generated: float32 mono chunks at 24 kHz (`backend.schema.SAMPLE_RATE`), watermarked, in order.
# The one type every streaming backend produces and every consumer (a voice channel, a WAV writer) reads.
AudioChunks = AsyncIterator[np.ndarray]


@runtime_checkable
class BackendClient(Protocol):
    """Async voice-clone backend. Errors are `backend.errors.VoicebotError` subclasses with user messages."""

    name: str  # e.g. "local", "modal:fa2", "http"

    async def clone(self, request: CloneRequest, on_progress: ProgressCallback | None = None) -> CloneResult: ...

    def clone_stream(self, request: CloneRequest) -> AudioChunks:
        """Speak `request.text` as chunks while it is generated (an async generator: closing it early stops the
        generation). Raises like `clone`, before the first chunk or between chunks."""
        ...

    async def clone_batch(self, requests: list[CloneRequest]) -> list[CloneResult]: ...

    async def health(self) -> HealthReport: ...

    async def languages(self) -> list[str]: ...

    async def check_watermark(self, audio: bytes) -> WatermarkCheck:
        """Whether a clip (any format the intake reads) carries the watermark every generated clip gets;
        `InvalidInput` for a clip that cannot be checked (too large, too long, not audio)."""
        ...

    async def forget_voices(self, clip_sha256s: list[str]) -> int:
        """Drop the cached voice prompts made from these reference clips (SHA-256 of the clip bytes sent as
        `CloneRequest.reference`); how many were dropped. Forget-me calls it so no voice outlives its user."""
        ...

    async def aclose(self) -> None: ...
