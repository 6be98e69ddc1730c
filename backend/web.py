"""The HTTP API in front of a clone service (the engine): `/clone`, `/clone-stream` (the speech as it is
generated), `/clone-batch`, `/health`, `/languages`, `/check` (is a clip watermarked by this backend?) and
`/forget-voices` (drop cached voice prompts: forget-me); under `/v1`, the OpenAI-compatible audio API on the
same service (`backend.openai_api`), which answers its errors in OpenAI's shape, the token's and the size
guard's included.

Handlers are plain `def`s: FastAPI runs them in its threadpool, so a generation that holds the engine's lock
for tens of seconds never blocks the event loop (health checks and bad requests still get answered).

What the edge enforces before a request costs anything (`guard`, which `voicebot serve-api` puts in front of
the same OpenAI-compatible app with its own authentication: per-member API keys):
- Closed by default. The bearer token is checked by a middleware, before routing and before a byte of the body
  is read; without a token every request is refused, unless the app is opened on purpose (`open_access`, for a
  deliberately public endpoint or one whose proxy checks callers, such as Modal's proxy auth).
- Bodies are bounded while they are read (FastAPI's `max_body_size`, counting the bytes that arrive whatever
  Content-Length says, chunked included; a Content-Length already over the limit is refused before reading):
  the limit is the largest valid request, derived from the clip and text limits.
- No `/docs`, `/redoc` or `/openapi.json` unless asked for (`docs=True`, and then behind the token too).
- Every failure answers `{"error": code, "message": ...}`, 4xx for the caller's mistakes.

Progress. `POST /clone` answers one JSON result, as the deployment plan's clients expect. A client that sends
`Accept: application/x-ndjson` gets a stream instead, one JSON object per line: `{"progress": {...}}` as the
engine reports it (stage, frames, frame budget; about twice a second), then one final `{"result": {...}}` or
`{"error": {"status": ..., "error": code, "message": ...}}`. Same route, so the token check, the body limit and
the 4xx answers hold unchanged: the request is validated before the stream starts, so a bad one still answers
a 4xx JSON error, never a stream; only what fails after the first line (a timeout, the engine) comes as the
error line. Content negotiation rather than a second route, so a new client against an older server simply
gets the plain answer (no progress) instead of a 404. On Modal, a plain request still running after 150 s is
answered with a 303 to a result URL; a stream has begun answering at once (headers and the first line), so it
stays one open connection for the whole generation.

Speech as it is generated. `POST /clone-stream` takes the `/clone` body (same token, same body limit, the same
4xx before anything streams) and answers NDJSON: `{"audio": "<base64 16-bit PCM, 24 kHz mono>"}` lines of at
most half a second each, as the engine decodes them, then `{"end": {}}`, or an error line
(`backend.wire`'s audio stream). A client that goes away stops the generation at the next frame.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.authentication import AuthCredentials, AuthenticationBackend, AuthenticationError, SimpleUser
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.datastructures import Headers
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.audio_stream import chunks_in_thread
from backend.batcher import DEFAULT_TIMEOUT_S, ProgressSink
from backend.errors import VoicebotError
from backend.intake.limits import AudioLimits
from backend.openai_api import DEFAULT_MODELS, PREFIX, create_openai_app, too_large, unauthorized
from backend.openai_api import body_limits as openai_body_limits
from backend.openai_api.speech import ThreadedSource
from backend.progress_stream import progress_then_result
from backend.schema import SAMPLE_RATE, CloneRequest, CloneResult, ForgetVoices, HealthReport, Progress, WatermarkCheck
from backend.validation import DEFAULT_MAX_TEXT_CHARS
from backend.voice_catalog import BlockingVoiceCatalog, ThreadedVoiceCatalog
from backend.watermark import CHECK_LIMITS
from backend.wire import (
    END_EVENT,
    FORGET_BODY_LIMIT,
    CheckBody,
    CloneBatchBody,
    CloneBody,
    NDJSON,
    ErrorBody,
    audio_event,
    batch_body_limit,
    check_body_limit,
    checked_batch,
    clone_body_limit,
    error_body,
    error_event,
    http_status,
    invalid_request,
    pcm16_pieces,
    progress_event,
    result_to_json,
    stream_line,
)

log = structlog.get_logger(__name__)
_INTERNAL_MESSAGE = "The voice backend failed unexpectedly."
_HTTP_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}


class CloneService(Protocol):
    """What the API serves: blocking methods, as `backend.engine.Engine` has them. `clone` takes the progress
    sink the batcher takes (the Modal container serves its engine behind one); a service whose `clone` takes
    none (the bare engine) serves every route but the progress stream."""

    def clone(self, request: CloneRequest, on_progress: ProgressSink | None = None) -> CloneResult: ...

    def clone_batch(self, requests: Sequence[CloneRequest]) -> list[CloneResult]: ...

    def clone_stream(self, request: CloneRequest) -> Iterator[np.ndarray]:
        """Blocking: the speech as float32 24 kHz chunks as they are generated (`Engine.clone_stream`)."""
        ...

    def validate(self, request: CloneRequest) -> None: ...

    def health(self) -> HealthReport: ...

    def languages(self) -> list[str]: ...

    def check_watermark(self, audio: bytes) -> WatermarkCheck: ...

    def forget_voices(self, clip_sha256s: list[str]) -> int: ...


class CallerRefused(AuthenticationError):
    """An authentication backend's refusal: 401 (no credential, or a wrong one) unless it says otherwise (403: a
    known caller who may not use this; 503: the credential could not be checked now). `message` is shown to
    the caller: never the credential."""

    def __init__(self, message: str, *, status: int = 401, code: str = "unauthorized") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class _BearerToken(AuthenticationBackend):
    """Requires `Authorization: Bearer <token>` on every request; with no token configured, refuses them all."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None
        # Who the caller is, as far as a shared token tells (recorded with a saved voice's consent): a
        # fingerprint of the token, which says which token was used without revealing it.
        self._identity = f"token:{hashlib.sha256(self._token).hexdigest()[:12]}" if self._token else ""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser]:
        if self._token is None:
            raise AuthenticationError("This endpoint is closed: the server has no token configured.")
        scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
        # compare_digest: the time taken must not reveal how much of a guessed token was right
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), self._token):
            raise AuthenticationError("Missing or wrong bearer token.")
        return AuthCredentials(["authenticated"]), SimpleUser(self._identity)


def _openai_path(path: str) -> bool:
    return path == PREFIX or path.startswith(f"{PREFIX}/")


def _unauthorized(conn: HTTPConnection, exc: AuthenticationError) -> JSONResponse:
    status, code = (exc.status, exc.code) if isinstance(exc, CallerRefused) else (401, "unauthorized")
    log.info("web.rejected", path=conn.url.path, code=code)
    if _openai_path(conn.url.path):
        return unauthorized(str(exc), status=status, code=code)
    return JSONResponse(ErrorBody(error=code, message=str(exc)).model_dump(), status_code=status,
                        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)


def _too_large(limit: int, path: str = "") -> JSONResponse:
    if _openai_path(path):
        return too_large(limit)
    return JSONResponse(ErrorBody(error="body_too_large", message=f"The request body is over the limit of "
                                  f"{limit:,} bytes.").model_dump(), status_code=413)


class _DeclaredSizeGuard:
    """FastAPI's `max_body_size` counts the bytes as they arrive, but answers a Content-Length that is already
    over the limit in plain text; this answers that case first, in the error shape, without reading anything."""

    def __init__(self, app: ASGIApp, limits: dict[str, int]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.get(scope["path"]) if scope["type"] == "http" else None
        declared = Headers(scope=scope).get("content-length", "") if limit is not None else ""
        if limit is not None and declared.isdigit() and int(declared) > limit:
            log.info("web.rejected", path=scope["path"], code="body_too_large", limit=limit)
            await _too_large(limit, scope["path"])(scope, receive, send)
            return
        await self.app(scope, receive, send)


def guard(app: FastAPI, *, body_limits: dict[str, int], authentication: AuthenticationBackend | None) -> None:
    """What every web app here keeps at its edge: `authentication` checked first, before routing and before a
    byte of the body is read (None: opened on purpose), then the declared-size guard (`body_limits` by path),
    and every failure answered in the error shape (OpenAI's under `PREFIX`)."""
    # The last middleware added runs first: the caller is checked before anything else looks at the request.
    app.add_middleware(_DeclaredSizeGuard, limits=body_limits)
    if authentication is not None:
        app.add_middleware(AuthenticationMiddleware, backend=authentication, on_error=_unauthorized)
    _install_error_handlers(app)


def _install_error_handlers(app: FastAPI) -> None:
    """Every failure answers `{"error": code, "message": ...}`, so clients parse one shape."""

    @app.exception_handler(VoicebotError)
    async def voicebot_error(request: Request, exc: VoicebotError) -> JSONResponse:
        log.info("web.rejected", path=request.url.path, code=exc.code)
        return JSONResponse(error_body(exc), status_code=http_status(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)  # set by the route while its body is read
        if exc.status_code == 413 and limit is not None:
            log.info("web.rejected", path=request.url.path, code="body_too_large", limit=limit)
            return _too_large(limit)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(ErrorBody(error=code, message=str(exc.detail)).model_dump(),
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        # "loc" starts with "body"; a JSON syntax error's continues with a character offset, not a field
        error = invalid_request(
            () if item["type"] == "json_invalid" else item["loc"][1:] for item in exc.errors())
        log.info("web.rejected", path=request.url.path, code=error.code)
        return JSONResponse(error_body(error), status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the log only: the body is shown to end users.
        log.exception("web.failed", path=request.url.path)
        return JSONResponse(
            ErrorBody(error="internal", message=_INTERNAL_MESSAGE).model_dump(), status_code=500
        )


async def _clone_stream(service: CloneService, request: CloneRequest) -> AsyncIterator[bytes]:
    """The NDJSON answer: each progress report as a line, then the result or the error line. The clone blocks,
    so it runs in a worker thread; the lines are written from the event loop as the reports arrive."""
    started = time.perf_counter()
    try:
        async for event in progress_then_result(
                lambda sink: asyncio.to_thread(service.clone, request, on_progress=sink)):
            if isinstance(event, Progress):
                yield stream_line(progress_event(event))
            else:
                log.info("web.clone", seconds=round(time.perf_counter() - started, 3),
                         audio_seconds=event.audio_seconds, stream=True)
                yield stream_line({"result": result_to_json(event)})
    except VoicebotError as exc:
        log.info("web.rejected", path="/clone", code=exc.code, stream=True)
        yield stream_line(error_event(exc))
    except Exception:  # the status line is already sent: the error goes in the stream, the traceback to the log
        log.exception("web.failed", path="/clone", stream=True)
        yield stream_line({"error": {"status": 500, **ErrorBody(
            error="internal", message=_INTERNAL_MESSAGE).model_dump()}})


async def _audio_stream(service: CloneService, request: CloneRequest, timeout_s: float) -> AsyncIterator[bytes]:
    """The `/clone-stream` answer: the speech in half-second PCM pieces as the engine decodes it, then the end
    line, or an error line (the status line is already sent)."""
    started, samples = time.perf_counter(), 0
    try:
        async for chunk in chunks_in_thread(lambda: service.clone_stream(request), timeout_s=timeout_s):
            samples += len(chunk)
            for pcm in pcm16_pieces(chunk):
                yield stream_line(audio_event(pcm, as_text=True))
        log.info("web.clone_stream", seconds=round(time.perf_counter() - started, 3),
                 audio_seconds=samples / SAMPLE_RATE)
        yield stream_line(END_EVENT)
    except VoicebotError as exc:
        log.info("web.rejected", path="/clone-stream", code=exc.code, stream=True)
        yield stream_line(error_event(exc))
    except Exception:
        log.exception("web.failed", path="/clone-stream", stream=True)
        yield stream_line({"error": {"status": 500, **ErrorBody(
            error="internal", message=_INTERNAL_MESSAGE).model_dump()}})


def create_web_app(
    service: CloneService, *, token: str | None = None, open_access: bool = False, docs: bool = False,
    audio_limits: AudioLimits | None = None, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
    voices: BlockingVoiceCatalog | None = None, speech_models: Sequence[str] = DEFAULT_MODELS,
    stream_timeout_s: float = DEFAULT_TIMEOUT_S,
) -> FastAPI:
    """The FastAPI app for `service`. With `token`, every route requires it as a bearer token; without one
    (None, empty or blank) every request is refused unless `open_access` opens the app on purpose. `docs`
    serves the OpenAPI schema and its pages; the body limits follow `audio_limits` and `max_text_chars`;
    `stream_timeout_s` bounds one `/clone-stream` (the batcher's deadline for a whole clip by default).
    `voices` are the saved voices `/v1/audio/speech` can speak with (and `/v1/audio/voices` saves to);
    `speech_models` the names its `model` field accepts."""
    token = (token or "").strip() or None
    if token and open_access:
        raise ValueError("create_web_app: a token and open_access contradict each other; pass one.")
    clip_limits = audio_limits or AudioLimits()
    body_limits = {"/clone": clone_body_limit(clip_limits, max_text_chars),
                   "/clone-stream": clone_body_limit(clip_limits, max_text_chars),
                   "/clone-batch": batch_body_limit(clip_limits, max_text_chars),
                   "/check": check_body_limit(CHECK_LIMITS), "/forget-voices": FORGET_BODY_LIMIT,
                   **openai_body_limits(clip_limits, max_text_chars)}
    app = FastAPI(title="voicebot TTS", docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None,
                  openapi_url="/openapi.json" if docs else None)
    if not open_access and token is None:
        log.warning("web.closed", reason="no token configured: every request is refused")
    guard(app, body_limits=body_limits, authentication=None if open_access else _BearerToken(token))
    catalog = ThreadedVoiceCatalog(voices) if voices is not None else None
    app.mount(PREFIX, create_openai_app(ThreadedSource(service), voices=catalog, models=speech_models,
                                        audio_limits=clip_limits, max_text_chars=max_text_chars))

    @app.post("/clone", max_body_size=body_limits["/clone"])
    def clone(body: CloneBody, request: Request) -> Any:
        clone_request = body.to_request()
        if NDJSON in request.headers.get("accept", ""):
            service.validate(clone_request)  # a bad request answers its 4xx here, before the stream starts
            return StreamingResponse(_clone_stream(service, clone_request), media_type=NDJSON)
        started = time.perf_counter()
        result = service.clone(clone_request)
        log.info("web.clone", seconds=round(time.perf_counter() - started, 3), audio_seconds=result.audio_seconds)
        return result_to_json(result)

    @app.post("/clone-stream", max_body_size=body_limits["/clone-stream"])
    def clone_stream(body: CloneBody) -> StreamingResponse:
        clone_request = body.to_request()
        service.validate(clone_request)  # a bad request answers its 4xx here, before the stream starts
        return StreamingResponse(_audio_stream(service, clone_request, stream_timeout_s), media_type=NDJSON)

    @app.post("/clone-batch", max_body_size=body_limits["/clone-batch"])
    def clone_batch(body: CloneBatchBody) -> dict[str, Any]:
        started = time.perf_counter()
        results = service.clone_batch(checked_batch(body.items, CloneBody.to_request, service.validate))
        log.info("web.clone_batch", seconds=round(time.perf_counter() - started, 3), items=len(results))
        return {"items": [result_to_json(result) for result in results]}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return service.health().model_dump(mode="json")

    @app.get("/languages")
    def languages() -> dict[str, list[str]]:
        return {"languages": service.languages()}

    @app.post("/check", max_body_size=body_limits["/check"])
    def check(body: CheckBody) -> dict[str, Any]:
        verdict = service.check_watermark(body.to_audio())
        log.info("web.check", watermarked=verdict.watermarked, confidence=verdict.confidence)
        return verdict.model_dump()

    @app.post("/forget-voices", max_body_size=body_limits["/forget-voices"])
    def forget_voices(body: ForgetVoices) -> dict[str, int]:
        return {"forgotten": service.forget_voices(body.clip_sha256s)}

    return app
