"""The one async interface every backend (local engine, Modal, HTTP) implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from backend.schema import CloneRequest, CloneResult, HealthReport


@runtime_checkable
class BackendClient(Protocol):
    """Async voice-clone backend. Errors are `backend.errors.VoicebotError` subclasses with user messages."""

    name: str  # e.g. "local", "modal:fa2", "http"

    async def clone(self, request: CloneRequest) -> CloneResult: ...

    async def clone_batch(self, requests: list[CloneRequest]) -> list[CloneResult]: ...

    async def health(self) -> HealthReport: ...

    async def languages(self) -> list[str]: ...

    async def aclose(self) -> None: ...
