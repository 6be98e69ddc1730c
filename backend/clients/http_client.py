"""Calls the HTTP API of `backend.web` (a deployed variant's web endpoint, or any server running it).

Useful where the Modal client cannot be used (no Modal token on the bot host) and to measure what plain HTTP
clients see. Transport failures, timeouts and error answers each become their own `VoicebotError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import structlog
from pydantic import ValidationError

from backend.clients.base import ProgressCallback
from backend.errors import BackendFailed, BackendNotConfigured, BackendTimeout, BackendUnavailable
from backend.schema import CloneRequest, CloneResult, HealthReport, Progress
from backend.settings import BackendSettings
from backend.wire import CloneBody, error_from_body, result_from_json

log = structlog.get_logger(__name__)
T = TypeVar("T")


class HttpBackend:
    """`BackendClient` over `settings.http_url`, sending `settings.http_token` as a bearer token if set."""

    name = "http"

    def __init__(self, settings: BackendSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not settings.http_url:
            raise BackendNotConfigured("The HTTP backend needs a URL: set VOICEBOT_HTTP_URL.")
        self._timeout_s = settings.timeout_s
        headers = {"Authorization": f"Bearer {settings.http_token.get_secret_value()}"} if settings.http_token else {}
        self._client = httpx.AsyncClient(
            base_url=settings.http_url, headers=headers, timeout=settings.timeout_s, transport=transport,
            # Modal web endpoints answer a request running past 150 s with a 303 to a URL that waits for the result.
            follow_redirects=True,
        )

    async def _request(self, method: str, path: str, parse: Callable[[Any], T],
                       body: dict[str, Any] | None = None) -> T:
        """Send, map failures to specific errors, and `parse` the JSON answer; an answer of the wrong shape
        (another server at that URL, an incompatible version) is a `BackendFailed`, not a crash in the bot."""
        try:
            response = await self._client.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise BackendTimeout(f"The HTTP backend did not answer within {self._timeout_s:g} s.") from exc
        except httpx.TransportError as exc:
            raise BackendUnavailable(f"The HTTP backend at {self._client.base_url} cannot be reached.") from exc
        if response.is_success:
            try:
                data = response.json()
            except ValueError as exc:
                raise BackendFailed("The HTTP backend answered with something other than JSON.") from exc
            try:
                return parse(data)
            except (ValidationError, KeyError, TypeError, ValueError, AttributeError) as exc:
                log.warning("http.bad_answer", path=path, error=type(exc).__name__)
                raise BackendFailed(
                    f"The HTTP backend's answer to {path} is not a voicebot answer: check VOICEBOT_HTTP_URL."
                ) from exc
        log.info("http.error", path=path, status=response.status_code)
        if response.status_code in (401, 403):
            raise BackendNotConfigured("The HTTP backend rejected the token: set VOICEBOT_HTTP_TOKEN to the server's.")
        if response.status_code == 404:
            raise BackendUnavailable(f"{response.url} does not exist: check VOICEBOT_HTTP_URL.")
        try:
            body_json = response.json()
        except ValueError:
            body_json = None  # e.g. a proxy's HTML error page
        raise error_from_body(response.status_code, body_json)

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
