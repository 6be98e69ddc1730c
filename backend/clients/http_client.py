"""Calls the HTTP API of `backend.web` (a deployed variant's web endpoint, or any server running it).

Useful where the Modal client cannot be used (no Modal token on the bot host) and to measure what plain HTTP
clients see. Transport failures, timeouts and error answers each become their own `VoicebotError`, worded for
users by `backend.clients.failures`; the URL (redacted: no credentials, no query) and the setting to check go
into the error's operator `detail` and the log line, never into the user's message.

Progress: given a callback, `clone` asks `POST /clone` for its NDJSON stream (`Accept: application/x-ndjson`,
see `backend.web`) and hands each progress line to the callback as it arrives. The stream is read with bounded
memory whatever the server sends: no line may exceed the longest possible result line, and it is read
undecoded (identity encoding asked for, anything else refused), so a compressed bomb never inflates here.
VOICEBOT_TIMEOUT_S bounds the whole stream, not each read. A server that answers plain JSON (an older
version) still works, without progress.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
import structlog
from pydantic import ValidationError

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
from backend.redaction import redact_url
from backend.schema import CloneRequest, CloneResult, HealthReport, Progress, WatermarkCheck
from backend.settings import BackendSettings
from backend.wire import (
    MAX_AUDIO_LINE_BYTES,
    NDJSON,
    AudioStreamReader,
    CheckBody,
    CloneBody,
    error_from_body,
    event_from_stream,
    forget_batches,
    max_stream_line_bytes,
    result_from_json,
)

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
        return await self._logged(method, path, self._send(method, path, parse, body))

    async def _logged(self, method: str, path: str, call: Awaitable[T]) -> T:
        """`call`, with every failure logged once for operators (redacted URL, code, detail)."""
        try:
            return await call
        except VoicebotError as exc:
            (log.info if isinstance(exc, InvalidInput) else log.warning)(
                "http.failed", method=method, url=self._where + path, code=exc.code, detail=exc.detail)
            raise

    async def _send(self, method: str, path: str, parse: Callable[[Any], T], body: dict[str, Any] | None) -> T:
        """Send, map failures to specific errors, and `parse` the JSON answer; an answer of the wrong shape
        (another server at that URL, an incompatible version) is a `BackendFailed`, not a crash in the bot."""
        where = self._where + path
        with self._transport_errors(where):
            response = await self._client.request(method, path, json=body)
        if response.is_success:
            with _foreign_answer(where, response.status_code):
                return parse(response.json())
        raise self._refused(where, response.status_code, response.content)

    @contextmanager
    def _transport_errors(self, where: str) -> Iterator[None]:
        try:
            yield
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise BackendTimeout(TIMED_OUT, detail=f"{where} did not answer within {self._timeout_s:g} s "
                                                   "(VOICEBOT_TIMEOUT_S)") from exc
        except httpx.TransportError as exc:
            raise BackendUnavailable(UNREACHABLE, detail=f"{where} cannot be reached ({type(exc).__name__}): "
                                                         "check VOICEBOT_HTTP_URL and that the service runs") from exc

    @staticmethod
    def _refused(where: str, status: int, content: bytes) -> VoicebotError:
        """The error for an answer that is not a success."""
        if status in (401, 403):
            return BackendNotConfigured(NOT_SET_UP, detail=f"{where} rejected the token (HTTP {status}): set "
                                                           "VOICEBOT_HTTP_TOKEN to the server's")
        if status == 404:
            return BackendUnavailable(NOT_SET_UP, detail=f"{where} does not exist (HTTP 404): check VOICEBOT_HTTP_URL")
        try:
            answer = json.loads(content)
        except ValueError:
            answer = None  # e.g. a proxy's HTML error page
        return from_service(error_from_body(status, answer), f"{where} (HTTP {status})")

    async def clone(self, request: CloneRequest, on_progress: ProgressCallback | None = None) -> CloneResult:
        body = CloneBody.from_request(request).model_dump()
        if on_progress is None:
            return await self._request("POST", "/clone", result_from_json, body)
        return await self._logged("POST", "/clone", self._clone_stream(body, on_progress))

    async def _clone_stream(self, body: dict[str, Any], on_progress: ProgressCallback) -> CloneResult:
        where = self._where + "/clone"
        headers = {"Accept": f"{NDJSON}, application/json", "Accept-Encoding": "identity"}
        with self._transport_errors(where):
            async with asyncio.timeout(self._timeout_s), \
                    self._client.stream("POST", "/clone", json=body, headers=headers) as response:
                if response.headers.get("content-encoding", "identity") != "identity":
                    raise BackendFailed(FAILED, detail=f"{where} answered with a content encoding although none "
                                                       "was asked for: check VOICEBOT_HTTP_URL")
                limit = max_stream_line_bytes()
                if not response.is_success:
                    raise self._refused(where, response.status_code, await _read_at_most(response, limit, where))
                if not response.headers.get("content-type", "").startswith(NDJSON):  # an older server
                    content = await _read_at_most(response, limit, where)
                    with _foreign_answer(where, response.status_code):
                        return result_from_json(json.loads(content))
                async for line in _bounded_lines(response.aiter_raw(), limit, where):
                    with _foreign_answer(where, response.status_code):
                        event = event_from_stream(json.loads(line), result_from_json)
                    if isinstance(event, CloneResult):
                        return event
                    await _report(on_progress, event)
        raise BackendFailed(FAILED, detail=f"{where} ended its stream without a result")

    async def clone_stream(self, request: CloneRequest) -> AudioChunks:
        """`POST /clone-stream`: each audio line as samples as it arrives, read with bounded memory (one line of
        at most half a second of audio, no content encoding, no more audio than any generation makes) under
        VOICEBOT_TIMEOUT_S for the whole stream. A stream cut before its end line is a failure."""
        where = self._where + "/clone-stream"
        body = CloneBody.from_request(request).model_dump()
        headers = {"Accept": NDJSON, "Accept-Encoding": "identity"}
        reader = AudioStreamReader(as_text=True)
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        try:
            with self._transport_errors(where):
                async with asyncio.timeout_at(deadline):
                    response = await self._client.send(
                        self._client.build_request("POST", "/clone-stream", json=body, headers=headers), stream=True)
                try:
                    if response.headers.get("content-encoding", "identity") != "identity":
                        raise BackendFailed(FAILED, detail=f"{where} answered with a content encoding although "
                                                           "none was asked for: check VOICEBOT_HTTP_URL")
                    if not response.is_success:
                        raise self._refused(where, response.status_code,
                                            await _read_at_most(response, MAX_AUDIO_LINE_BYTES, where))
                    lines = _bounded_lines(response.aiter_raw(), MAX_AUDIO_LINE_BYTES, where)
                    async for line in items_until(lines, deadline):
                        with _foreign_answer(where, response.status_code):
                            samples = reader.read(json.loads(line))
                        if samples is None:
                            return
                        yield samples
                finally:
                    await response.aclose()
            raise BackendFailed(FAILED, detail=f"{where} ended its stream before its end line")
        except VoicebotError as exc:
            (log.info if isinstance(exc, InvalidInput) else log.warning)(
                "http.failed", method="POST", url=where, code=exc.code, detail=exc.detail)
            raise

    async def clone_batch(self, requests: list[CloneRequest]) -> list[CloneResult]:
        body = {"items": [CloneBody.from_request(request).model_dump() for request in requests]}
        return await self._request(
            "POST", "/clone-batch", lambda reply: [result_from_json(item) for item in reply["items"]], body)

    async def health(self) -> HealthReport:
        return await self._request("GET", "/health", HealthReport.model_validate)

    async def languages(self) -> list[str]:
        return await self._request("GET", "/languages", lambda reply: [str(name) for name in reply["languages"]])

    async def check_watermark(self, audio: bytes) -> WatermarkCheck:
        return await self._request("POST", "/check", WatermarkCheck.model_validate,
                                   CheckBody.from_audio(audio).model_dump())

    async def forget_voices(self, clip_sha256s: list[str]) -> int:
        forgotten = 0
        for batch in forget_batches(clip_sha256s):
            forgotten += await self._request("POST", "/forget-voices", lambda reply: int(reply["forgotten"]),
                                             {"clip_sha256s": batch})
        return forgotten

    async def aclose(self) -> None:
        await self._client.aclose()


@contextmanager
def _foreign_answer(where: str, status: int) -> Iterator[None]:
    """An answer of the wrong shape (another server at that URL, an incompatible version) is a `BackendFailed`,
    not a crash in the bot. A `VoicebotError` (an error line of the stream) passes as it is."""
    try:
        yield
    except VoicebotError as exc:
        raise from_service(exc, f"{where} (HTTP {status})") from exc
    # RecursionError: JSON nested thousands deep
    except (ValidationError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise BackendFailed(FAILED, detail=f"{where} answered HTTP {status} with something other than a voicebot "
                                           "answer: check VOICEBOT_HTTP_URL") from exc


async def _bounded_lines(chunks: AsyncIterator[bytes], limit: int, where: str) -> AsyncIterator[bytes]:
    """The lines of a byte stream (the last one may lack its newline), none longer than `limit` bytes: a line
    that grows past it fails before more than `limit` plus one chunk is held."""
    pending = bytearray()
    async for chunk in chunks:
        pending += chunk
        while (end := pending.find(b"\n")) >= 0:
            line = bytes(pending[:end])
            del pending[: end + 1]
            if line.strip():
                yield line
        if len(pending) > limit:
            raise BackendFailed(FAILED, detail=f"{where} sent a line over {limit:,} bytes: not a voicebot answer")
    if pending.strip():
        yield bytes(pending)


async def _read_at_most(response: httpx.Response, limit: int, where: str) -> bytes:
    """A whole answer that is not a stream (an error, or an older server's plain result), at most `limit` bytes."""
    content = bytearray()
    async for chunk in response.aiter_raw():
        content += chunk
        if len(content) > limit:
            raise BackendFailed(FAILED, detail=f"{where} sent an answer over {limit:,} bytes: not a voicebot answer")
    return bytes(content)


async def _report(on_progress: ProgressCallback, progress: Progress) -> None:
    """A callback that raises never fails the clone (`backend.clients.base`)."""
    try:
        await on_progress(progress)
    except Exception:
        log.exception("http.progress_callback_failed", stage=progress.stage)
