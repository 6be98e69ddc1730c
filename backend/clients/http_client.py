"""Calls the HTTP API of `backend.web` (a deployed variant's web endpoint, or any server running it).

Useful where the Modal client cannot be used (no Modal token on the bot host) and to measure what plain HTTP
clients see. Transport failures, timeouts and error answers each become their own `VoicebotError`, worded for
users by `backend.clients.failures`; the URL (redacted: no credentials, no query) and the setting to check go
into the error's operator `detail` and the log line, never into the user's message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import structlog
from pydantic import ValidationError

from backend.clients.base import ProgressCallback
from backend.clients.failures import FAILED, NOT_SET_UP, TIMED_OUT, UNREACHABLE, from_service
from backend.errors import (
    BackendFailed,
    BackendNotConfigured,
    BackendTimeout,
    BackendUnavailable,
    InvalidInput,
    VoicebotError,
)
from backend.redaction import redact_url
from backend.schema import CloneRequest, CloneResult, HealthReport, Progress
from backend.settings import BackendSettings
from backend.wire import CloneBody, error_from_body, result_from_json

log = structlog.get_logger(__name__)
T = TypeVar("T")


def _base_url(setting: str) -> httpx.URL:
    """VOICEBOT_HTTP_URL as a base URL; a query in it (`?api_key=...`) is sent with every request."""
    try:
        url = httpx.URL(setting)
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise BackendNotConfigured(NOT_SET_UP, detail=f"VOICEBOT_HTTP_URL is not an http(s) URL: {redact_url(setting)}")
    return url


class HttpBackend:
    """`BackendClient` over `settings.http_url`, sending `settings.http_token` as a bearer token if set."""

    name = "http"

    def __init__(self, settings: BackendSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not settings.http_url:
            raise BackendNotConfigured(NOT_SET_UP, detail="the HTTP backend needs a URL: set VOICEBOT_HTTP_URL")
        url = _base_url(settings.http_url)
        self._where = redact_url(settings.http_url).rstrip("/")  # what logs and admins see of the URL
        self._timeout_s = settings.timeout_s
        headers = {"Authorization": f"Bearer {settings.http_token.get_secret_value()}"} if settings.http_token else {}
        self._client = httpx.AsyncClient(
            base_url=url.copy_with(query=None, fragment=None), params=url.params, headers=headers,
            timeout=settings.timeout_s, transport=transport,
            # Modal web endpoints answer a request running past 150 s with a 303 to a URL that waits for the result
            # (httpx drops the Authorization header when a redirect leaves the origin).
            follow_redirects=True,
        )

    async def _request(self, method: str, path: str, parse: Callable[[Any], T],
                       body: dict[str, Any] | None = None) -> T:
        """`_send`, with every failure logged once for operators (redacted URL, code, detail)."""
        try:
            return await self._send(method, path, parse, body)
        except VoicebotError as exc:
            (log.info if isinstance(exc, InvalidInput) else log.warning)(
                "http.failed", method=method, url=self._where + path, code=exc.code, detail=exc.detail)
            raise

    async def _send(self, method: str, path: str, parse: Callable[[Any], T], body: dict[str, Any] | None) -> T:
        """Send, map failures to specific errors, and `parse` the JSON answer; an answer of the wrong shape
        (another server at that URL, an incompatible version) is a `BackendFailed`, not a crash in the bot."""
        where = self._where + path
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise BackendTimeout(TIMED_OUT, detail=f"{where} did not answer within {self._timeout_s:g} s "
                                                   "(VOICEBOT_TIMEOUT_S)") from exc
        except httpx.TransportError as exc:
            raise BackendUnavailable(UNREACHABLE, detail=f"{where} cannot be reached ({type(exc).__name__}): "
                                                         "check VOICEBOT_HTTP_URL and that the service runs") from exc
        if response.is_success:
            try:
                return parse(response.json())
            except (ValidationError, KeyError, TypeError, ValueError, AttributeError) as exc:
                raise BackendFailed(FAILED, detail=f"{where} answered HTTP {response.status_code} with something "
                                                   "other than a voicebot answer: check VOICEBOT_HTTP_URL") from exc
        status = response.status_code
        if status in (401, 403):
            raise BackendNotConfigured(NOT_SET_UP, detail=f"{where} rejected the token (HTTP {status}): set "
                                                          "VOICEBOT_HTTP_TOKEN to the server's")
        if status == 404:
            raise BackendUnavailable(NOT_SET_UP, detail=f"{where} does not exist (HTTP 404): check VOICEBOT_HTTP_URL")
        try:
            answer = response.json()
        except ValueError:
            answer = None  # e.g. a proxy's HTML error page
        raise from_service(error_from_body(status, answer), f"{where} (HTTP {status})")

    async def clone(self, request: CloneRequest, on_progress: ProgressCallback | None = None) -> CloneResult:
        if on_progress is not None:
            await on_progress(Progress(stage="cloning"))
        return await self._request("POST", "/clone", result_from_json, CloneBody.from_request(request).model_dump())

    async def clone_batch(self, requests: list[CloneRequest]) -> list[CloneResult]:
        body = {"items": [CloneBody.from_request(request).model_dump() for request in requests]}
        return await self._request(
            "POST", "/clone-batch", lambda reply: [result_from_json(item) for item in reply["items"]], body)

    async def health(self) -> HealthReport:
        return await self._request("GET", "/health", HealthReport.model_validate)

    async def languages(self) -> list[str]:
        return await self._request("GET", "/languages", lambda reply: [str(name) for name in reply["languages"]])

    async def aclose(self) -> None:
        await self._client.aclose()
