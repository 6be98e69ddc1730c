"""Calls a deployed variant class of `backend.modal_app` through Modal's client (`.remote.aio`).

The class is looked up by name (`modal.Cls.from_name`), so the bot never imports the Modal app or its images;
the variant table in `backend.variants` supplies the class names. Each failure mode becomes its own error:
users read what happened (`backend.clients.failures`), operators the fix in its `detail` (missing token: run
`modal token new`; app not deployed: `modal deploy`; timeout; the remote failure).

Progress: given a callback, `clone` calls the generator method `clone_stream` (`.remote_gen.aio`), which yields
the engine's progress reports and then the same reply envelope `clone` returns; VOICEBOT_TIMEOUT_S bounds the
whole stream. Modal carries a generator's items as they are yielded, so no web endpoint and no polling is needed.

Speech as it is generated: `clone_stream` calls the generator method `stream_audio` the same way; its items
are half-second 16-bit PCM pieces, then an end item (`backend.wire`'s audio stream).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import modal
import modal.exception
import structlog

from backend.audio_stream import items_until
from backend.clients.base import AudioChunks, ProgressCallback
from backend.clients.failures import FAILED, NOT_SET_UP, TIMED_OUT, UNREACHABLE, from_service
from backend.errors import (
    BackendFailed,
    BackendNotConfigured,
    BackendTimeout,
    BackendUnavailable,
    InvalidInput,
    VoicebotError,
)
from backend.schema import CloneRequest, CloneResult, HealthReport, Progress, WatermarkCheck
from backend.settings import BackendSettings
from backend.variants import DEFAULT_VARIANT, VARIANTS
from backend.wire import AudioStreamReader, forget_batches, unwrap_reply

log = structlog.get_logger(__name__)


class ModalBackend:
    """`BackendClient` for one variant ("fa2", "sdpa", "06b") of the deployed app `settings.modal_app`."""

    def __init__(self, settings: BackendSettings, variant: str | None = None) -> None:
        variant = variant or next(iter(settings.modal_variants), DEFAULT_VARIANT)
        if variant not in VARIANTS:
            raise BackendNotConfigured(
                NOT_SET_UP, code="unknown_variant",
                detail=f"unknown Modal variant {variant!r} in VOICEBOT_MODAL_VARIANTS; "
                       f"choose from: {', '.join(VARIANTS)}",
            )
        self.name = f"modal:{variant}"
        self._app_name = settings.modal_app
        self._class_name = VARIANTS[variant].class_name
        self._timeout_s = settings.timeout_s
        self._service: Any = None

    def _remote(self) -> Any:
        """The remote instance; `from_name` is lazy, so lookup errors surface on the first call."""
        if self._service is None:
            self._service = modal.Cls.from_name(self._app_name, self._class_name)()
        return self._service

    async def _call(self, method: str, *args: Any) -> Any:
        """The payload of `method.remote.aio(*args)`'s reply envelope, under the deadline."""
        with self._failures(method) as where, _remote_errors(where, self._timeout_s):
            return unwrap_reply(await asyncio.wait_for(getattr(self._remote(), method).remote.aio(*args),
                                                       self._timeout_s))

    async def _stream(self, method: str, on_progress: ProgressCallback, *args: Any) -> Any:
        """The payload of the reply envelope that `method.remote_gen.aio(*args)` ends with, each progress item
        before it handed to `on_progress`; the deadline covers the whole stream."""
        with self._failures(method) as where:
            with _remote_errors(where, self._timeout_s):
                async with asyncio.timeout(self._timeout_s):
                    async for item in getattr(self._remote(), method).remote_gen.aio(*args):
                        if isinstance(item, dict) and "progress" in item:
                            await _report(on_progress, Progress.model_validate(item["progress"]))
                        else:
                            return unwrap_reply(item)
            raise BackendFailed(FAILED, detail=f"{where} ended its stream without a reply")

    @contextmanager
    def _failures(self, method: str) -> Iterator[str]:
        """Yields the call's name for details; every failure is logged once for operators (target, code, detail)."""
        try:
            yield f"Modal {self._app_name}/{self._class_name}.{method}"
        except VoicebotError as exc:
            (log.info if isinstance(exc, InvalidInput) else log.warning)(
                "modal.failed", target=f"{self._app_name}/{self._class_name}", method=method, code=exc.code,
                detail=exc.detail)
            raise

    async def clone(self, request: CloneRequest, on_progress: ProgressCallback | None = None) -> CloneResult:
        if on_progress is None:
            return CloneResult.model_validate(await self._call("clone", request.model_dump()))
        return CloneResult.model_validate(await self._stream("clone_stream", on_progress, request.model_dump()))

    async def clone_stream(self, request: CloneRequest) -> AudioChunks:
        """The generator method `stream_audio` (`.remote_gen.aio`): each audio piece as samples as the
        container yields it, under VOICEBOT_TIMEOUT_S for the whole stream; a stream that stops before its end
        item is a failure."""
        reader = AudioStreamReader(as_text=False)
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        with self._failures("stream_audio") as where, _remote_errors(where, self._timeout_s):
            stream = self._remote().stream_audio.remote_gen.aio(request.model_dump())
            try:
                async for item in items_until(stream, deadline):
                    try:
                        samples = reader.read(item)
                    except ValueError as exc:
                        raise BackendFailed(FAILED, detail=f"{where} sent something other than a voicebot audio "
                                                           f"stream: {exc}") from None
                    if samples is None:
                        return
                    yield samples
            finally:
                close = getattr(stream, "aclose", None)
                if close is not None:
                    await close()
            raise BackendFailed(FAILED, detail=f"{where} ended its stream before its end item")

    async def clone_batch(self, requests: list[CloneRequest]) -> list[CloneResult]:
        results = await self._call("clone_batch", [request.model_dump() for request in requests])
        return [CloneResult.model_validate(result) for result in results]

    async def health(self) -> HealthReport:
        return HealthReport.model_validate(await self._call("health"))

    async def languages(self) -> list[str]:
        return list(await self._call("languages"))

    async def check_watermark(self, audio: bytes) -> WatermarkCheck:
        return WatermarkCheck.model_validate(await self._call("check_watermark", audio))

    async def forget_voices(self, clip_sha256s: list[str]) -> int:
        """Reaches the container that serves the call; the others drop their in-memory caches when they scale
        down (`SCALEDOWN_S` after their last request)."""
        forgotten = 0
        for batch in forget_batches(clip_sha256s):
            forgotten += int(await self._call("forget_voices", batch))
        return forgotten

    async def aclose(self) -> None:
        """Nothing to release: Modal's client is shared by the process and closes with it."""


async def _report(on_progress: ProgressCallback, progress: Progress) -> None:
    """A callback that raises never fails the clone (`backend.clients.base`)."""
    try:
        await on_progress(progress)
    except Exception:
        log.exception("modal.progress_callback_failed", stage=progress.stage)


@contextmanager
def _remote_errors(where: str, timeout_s: float) -> Iterator[None]:
    """Each way a Modal call fails as its own `VoicebotError`: users read what happened, operators the fix."""
    try:
        yield
    except (TimeoutError, modal.exception.TimeoutError) as exc:
        raise BackendTimeout(TIMED_OUT, detail=f"{where} did not answer within {timeout_s:g} s "
                                               "(VOICEBOT_TIMEOUT_S)") from exc
    except (modal.exception.AuthError, modal.exception.PermissionDeniedError) as exc:
        raise BackendNotConfigured(NOT_SET_UP, detail=(
            f"{where}: Modal credentials are missing or invalid ({type(exc).__name__}): set MODAL_TOKEN_ID and "
            "MODAL_TOKEN_SECRET, or run `modal token new`")) from exc
    except modal.exception.NotFoundError as exc:
        raise BackendUnavailable(NOT_SET_UP, detail=(
            f"{where}: the app is not deployed: run `modal deploy -m backend.modal_app`")) from exc
    except modal.exception.ConnectionError as exc:
        raise BackendUnavailable(UNREACHABLE, detail=f"{where}: Modal cannot be reached: check the network") from exc
    except VoicebotError as exc:  # an error reply, or raised outside the envelope (the container's model load)
        raise from_service(exc, where)  # from_service keeps the cause
    except Exception as exc:
        log.exception("modal.crashed", target=where)
        raise BackendFailed(FAILED, detail=f"{where} raised {type(exc).__name__}; the traceback is logged") from exc
