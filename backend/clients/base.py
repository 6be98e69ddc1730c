"""The one async interface every backend (local engine, Modal, HTTP) implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, Protocol, runtime_checkable

from backend.schema import CloneRequest, CloneResult, HealthReport

Stage = Literal["cloning", "generating"]
# Called by a backend as a job moves from encoding the voice to generating speech, so the bots can edit
# their progress message. Backends that cannot tell the stages apart call it once with "cloning".
StageCallback = Callable[[Stage], Awaitable[None]]


@runtime_checkable
class BackendClient(Protocol):
    """Async voice-clone backend. Errors are `backend.errors.VoicebotError` subclasses with user messages."""

    name: str  # e.g. "local", "modal:fa2", "http"

    async def clone(self, request: CloneRequest, on_stage: StageCallback | None = None) -> CloneResult: ...

    async def clone_batch(self, requests: list[CloneRequest]) -> list[CloneResult]: ...

    async def health(self) -> HealthReport: ...

    async def languages(self) -> list[str]: ...

    async def aclose(self) -> None: ...
