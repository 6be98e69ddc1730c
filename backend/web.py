"""The HTTP API in front of a clone service (the engine): `/clone`, `/clone-batch`, `/health`, `/languages`.

Handlers are plain `def`s: FastAPI runs them in its threadpool, so a generation that holds the engine's lock
for tens of seconds never blocks the event loop (health checks and bad requests still get answered).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Sequence
from typing import Annotated, Any, Protocol

import structlog
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.errors import VoicebotError
from backend.schema import CloneRequest, CloneResult, HealthReport
from backend.wire import CloneBatchBody, CloneBody, ErrorBody, error_body, http_status, result_to_json

log = structlog.get_logger(__name__)
_HTTP_CODES = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}
_BEARER = HTTPBearer(auto_error=False)


class CloneService(Protocol):
    """What the API serves; `backend.engine.Engine` has exactly these (blocking) methods."""

    def clone(self, request: CloneRequest) -> CloneResult: ...

    def clone_batch(self, requests: Sequence[CloneRequest]) -> list[CloneResult]: ...

    def health(self) -> HealthReport: ...

    def languages(self) -> list[str]: ...


def _bearer_check(token: str):
    """A dependency that requires `Authorization: Bearer <token>`."""

    def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        # compare_digest: the time taken must not reveal how much of a guessed token was right
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
            raise HTTPException(401, "Missing or wrong bearer token.", headers={"WWW-Authenticate": "Bearer"})

    return check


def _install_error_handlers(app: FastAPI) -> None:
    """Every failure answers `{"error": code, "message": ...}`, so clients parse one shape."""

    @app.exception_handler(VoicebotError)
    async def voicebot_error(request: Request, exc: VoicebotError) -> JSONResponse:
        log.info("web.rejected", path=request.url.path, code=exc.code)
        return JSONResponse(error_body(exc), status_code=http_status(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(ErrorBody(error=code, message=str(exc.detail)).model_dump(),
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = sorted({".".join(str(part) for part in error["loc"][1:]) or "body" for error in exc.errors()})
        log.info("web.rejected", path=request.url.path, code="invalid_request")
        return JSONResponse(
            ErrorBody(error="invalid_request", message=f"Invalid or missing fields: {', '.join(fields)}.").model_dump(),
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the log only: the body is shown to end users.
        log.exception("web.failed", path=request.url.path)
        return JSONResponse(
            ErrorBody(error="internal", message="The voice backend failed unexpectedly.").model_dump(), status_code=500
        )


def create_web_app(service: CloneService, token: str | None = None) -> FastAPI:
    """The FastAPI app for `service`; with `token`, every route requires it as a bearer token."""
    app = FastAPI(title="voicebot TTS", dependencies=[Depends(_bearer_check(token))] if token else [])
    _install_error_handlers(app)

    @app.post("/clone")
    def clone(body: CloneBody) -> dict[str, Any]:
        started = time.perf_counter()
        result = service.clone(body.to_request())
        log.info("web.clone", seconds=round(time.perf_counter() - started, 3), audio_seconds=result.audio_seconds)
        return result_to_json(result)

    @app.post("/clone-batch")
    def clone_batch(body: CloneBatchBody) -> dict[str, Any]:
        started = time.perf_counter()
        results = service.clone_batch([item.to_request() for item in body.items])
        log.info("web.clone_batch", seconds=round(time.perf_counter() - started, 3), items=len(results))
        return {"items": [result_to_json(result) for result in results]}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return service.health().model_dump(mode="json")

    @app.get("/languages")
    def languages() -> dict[str, list[str]]:
        return {"languages": service.languages()}

    return app
