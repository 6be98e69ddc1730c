"""Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with the statuses the `openai`
SDK turns into its exception classes (400 `BadRequestError`, 401 `AuthenticationError`, 403
`PermissionDeniedError`, 404 `NotFoundError`, 409 `ConflictError`, 413, 429 `RateLimitError`, 5xx
`InternalServerError`). An app serving errors of other layers (`voicebot serve-api`: limits, blocks) maps
their codes to statuses (`install_error_handlers(app, statuses)`).

The code is the backend's own stable code (`text_too_long`, `voice_not_found`, ...), the message the same
user-facing text the rest of the API sends (cut to `MAX_MESSAGE_CHARS`, never a host, variable or secret).
The SDK retries 409, 429 and 5xx answers by default; where a retry cannot help, the answer says so
(`x-should-retry: false`), so one bad request is not sent three times to the GPU; a cooldown says when to
come back (`retry-after`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

from backend.errors import BackendTimeout, EngineConfigError, InvalidInput, VoicebotError
from backend.wire import MAX_MESSAGE_CHARS, invalid_request

log = structlog.get_logger(__name__)
INTERNAL_MESSAGE = "The voice backend failed unexpectedly."
# Codes of `InvalidInput` whose status is not 400.
_STATUS_BY_CODE = {"voice_not_found": 404, "model_not_found": 404, "voice_name_taken": 409,
                   "voice_limit_reached": 403, "uploads_closed": 403}
_TYPE_BY_STATUS = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                   409: "conflict_error", 429: "rate_limit_error"}
_HTTP_CODES = {400: "invalid_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
               413: "body_too_large"}


class InvalidParam(InvalidInput):
    """An `InvalidInput` that names the request field at fault (OpenAI's `param`)."""

    def __init__(self, message: str, *, param: str, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.param = param


def openai_error(status: int, code: str, message: str, *, param: str | None = None,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    """The one way this API answers a failure."""
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    kind = "server_error" if status >= 500 else _TYPE_BY_STATUS.get(status, "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def status_of(exc: VoicebotError, statuses: Mapping[str, int] | None = None) -> int:
    """400 for the caller's mistakes (the SDK's `BadRequestError`), 404/409/403 for the few that are not about
    the request's shape, the app's own `statuses` by code, 503 when this server cannot serve its configuration,
    504 past the engine's deadline."""
    status = {**_STATUS_BY_CODE, **(statuses or {})}.get(exc.code)
    if status is not None:
        return status
    if isinstance(exc, InvalidInput):
        return 400
    if isinstance(exc, EngineConfigError):
        return 503
    if isinstance(exc, BackendTimeout):
        return 504
    return 500


def error_response(exc: VoicebotError, statuses: Mapping[str, int] | None = None) -> JSONResponse:
    status = status_of(exc, statuses)
    headers = {} if status in (500, 504) else {"x-should-retry": "false"}
    seconds_left = getattr(exc, "seconds_left", None)  # a cooldown: worth retrying, after it
    if status == 429 and isinstance(seconds_left, (int, float)) and seconds_left > 0:
        headers = {"retry-after": str(max(1, math.ceil(seconds_left)))}
    return openai_error(status, exc.code, exc.message, param=getattr(exc, "param", None), headers=headers)


def unauthorized(message: str, *, status: int = 401, code: str = "unauthorized") -> JSONResponse:
    """A caller refused at the door: 401 (no or a wrong credential) asks for a bearer token; 403 (a known
    caller who may not use the API) and 503 (their credential could not be checked) do not."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return openai_error(status, code, message, headers=headers)


def too_large(limit: int) -> JSONResponse:
    return openai_error(413, "body_too_large", f"The request body is over the limit of {limit:,} bytes.",
                        headers={"x-should-retry": "false"})


def install_error_handlers(app: FastAPI, statuses: Mapping[str, int] | None = None) -> None:
    """Every failure of the OpenAI-compatible app answers in OpenAI's shape; tracebacks go to the log only."""

    @app.exception_handler(VoicebotError)
    async def voicebot_error(request: Request, exc: VoicebotError) -> JSONResponse:
        log.info("openai_api.rejected", path=request.url.path, code=exc.code)
        return error_response(exc, statuses)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)  # set by the route while its body is read
        if exc.status_code == 413 and limit is not None:
            log.info("openai_api.rejected", path=request.url.path, code="body_too_large", limit=limit)
            return too_large(limit)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return openai_error(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> JSONResponse:
        # "loc" starts with "body"; a JSON syntax error's continues with a character offset, not a field
        locations = [() if item["type"] == "json_invalid" else item["loc"][1:] for item in exc.errors()]
        error = invalid_request(locations)
        first = next((".".join(str(part) for part in location) for location in locations if location), None)
        log.info("openai_api.rejected", path=request.url.path, code=error.code)
        return openai_error(400, error.code, error.message, param=first, headers={"x-should-retry": "false"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("openai_api.failed", path=request.url.path)
        return openai_error(500, "internal", INTERNAL_MESSAGE)
