"""Progress over the remote transports: the web API's NDJSON answer to `POST /clone`, the HTTP client reading it
(bounded, under one deadline, failures mapped), and the Modal client reading `clone_stream`'s generator."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from types import SimpleNamespace

import httpx
import modal
import modal.exception
import pytest

from backend.clients.failures import FAILED, NOT_SET_UP, TIMED_OUT
from backend.clients.http_client import HttpBackend
from backend.clients.modal_client import ModalBackend
from backend.errors import (
    BackendFailed,
    BackendNotConfigured,
    BackendTimeout,
    BackendUnavailable,
    EngineConfigError,
    InvalidInput,
)
from backend.schema import CloneRequest, CloneResult, Progress, Timings
from backend.settings import BackendSettings
from backend.web import create_web_app
from backend.wire import NDJSON, max_stream_line_bytes, result_to_json
from tests.backend.test_web import CountingBody, NeverCalled

TOKEN = "stream-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STREAM = AUTH | {"Accept": NDJSON}
RESULT = CloneResult(audio=b"RIFF-fake-wav", audio_seconds=0.32, frames=4, timings=Timings(total_s=1.5))
REPORTS = [Progress(stage="cloning", frame_budget=8), Progress(stage="generating", frame_budget=8),
           Progress(stage="generating", frames=4, frame_budget=8)]
BODY = {"text": "Hello.", "language": "English", "ref_audio_base64": base64.b64encode(b"clip").decode()}


class ReportingService:
    """Reports `REPORTS` and returns `RESULT` (or raises `fails`). With `hold`, it answers only once the server has
    written a progress line out (`written`), so a stream that held its lines back until the end would stall."""

    def __init__(self, *, hold: bool = False, fails: Exception | None = None) -> None:
        self.hold, self.fails = hold, fails
        self.written = threading.Event()
        self.validated: list[CloneRequest] = []

    def validate(self, request: CloneRequest) -> None:
        if request.language == "Klingon":
            raise InvalidInput("Unknown language 'Klingon'.", code="unknown_language")
        self.validated.append(request)

    def clone(self, request: CloneRequest, on_progress=None) -> CloneResult:
        for report in REPORTS if on_progress else ():
            on_progress(report)
        if self.hold:
            assert self.written.wait(timeout=10), "no progress line was written before the result"
        if self.fails:
            raise self.fails
        return RESULT


async def asgi_post(app, body: dict, headers: dict, written: threading.Event | None = None) -> tuple[int, dict, list]:
    """POST straight through ASGI, recording each body message as the app sends it (httpx's ASGI transport would
    hand back the whole body at the end); `written` is set once a progress line has gone out."""
    start: dict = {}
    chunks: list[bytes] = []
    request_body = json.dumps(body).encode()
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": request_body, "more_body": False}
        await asyncio.sleep(30)
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            start.update(message)
        elif message.get("body"):
            chunks.append(message["body"])
            if written is not None and b'"progress"' in message["body"]:
                written.set()

    raw = [(key.lower().encode(), value.encode()) for key, value in
           (headers | {"Content-Type": "application/json", "Content-Length": str(len(request_body))}).items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/clone", "raw_path": b"/clone", "query_string": b"", "root_path": "", "headers": raw,
             "client": ("test", 1), "server": ("tts", 80)}
    await asyncio.wait_for(app(scope, receive, send), timeout=20)
    response_headers = {key.decode(): value.decode() for key, value in start["headers"]}
    return start["status"], response_headers, chunks


def lines_of(chunks: list[bytes]) -> list[dict]:
    return [json.loads(line) for line in b"".join(chunks).splitlines()]


# -- the web API ---------------------------------------------------------------------------------------------
async def test_the_stream_sends_each_progress_line_before_the_result_exists():
    service = ReportingService(hold=True)
    status, headers, chunks = await asgi_post(create_web_app(service, token=TOKEN), BODY, STREAM, service.written)
    assert status == 200 and headers["content-type"].startswith(NDJSON)
    lines = lines_of(chunks)
    assert [line["progress"] for line in lines[:-1]] == [report.model_dump() for report in REPORTS]
    assert lines[-1] == {"result": result_to_json(RESULT)}
    assert len(chunks) == len(lines)  # one message per line, as each was reported
    assert [request.text for request in service.validated] == ["Hello."]


async def test_without_the_accept_header_clone_answers_plain_json():
    status, headers, chunks = await asgi_post(create_web_app(ReportingService(), token=TOKEN), BODY, AUTH)
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(b"".join(chunks)) == result_to_json(RESULT)


@pytest.mark.parametrize(("body", "code"), [(BODY | {"language": "Klingon"}, "unknown_language"),
                                            ({"text": "Hi."}, "invalid_request"),
                                            (BODY | {"ref_audio_base64": "not base64!"}, "bad_base64")])
async def test_an_invalid_request_answers_a_4xx_json_error_not_a_stream(body, code):
    status, headers, chunks = await asgi_post(create_web_app(ReportingService(), token=TOKEN), body, STREAM)
    assert (status, headers["content-type"]) == (422, "application/json")
    assert json.loads(b"".join(chunks))["error"] == code


async def test_the_stream_keeps_the_token_before_the_body():
    body = CountingBody(b"x" * 1024 * 1024, 400)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_web_app(NeverCalled(), token=TOKEN)),
                                 base_url="http://tts") as client:
        response = await client.post("/clone", content=body, headers={"Accept": NDJSON,
                                                                      "Authorization": "Bearer wrong"})
    assert (response.status_code, response.json()["error"], body.sent) == (401, "unauthorized", 0)


@pytest.mark.parametrize(("failure", "status", "code", "message"), [
    (EngineConfigError("flash-attn is not importable.", code="flash_attn_missing"), 503, "flash_attn_missing",
     "flash-attn is not importable."),
    (RuntimeError("CUDA error: secret internals"), 500, "internal", "The voice backend failed unexpectedly."),
])
async def test_a_failure_after_the_stream_started_is_its_last_line(failure, status, code, message):
    _, _, chunks = await asgi_post(create_web_app(ReportingService(fails=failure), token=TOKEN), BODY, STREAM)
    lines = lines_of(chunks)
    assert [line.get("progress", {}).get("stage") for line in lines[:-1]] == ["cloning", "generating", "generating"]
    assert lines[-1] == {"error": {"status": status, "error": code, "message": message}}
    assert b"secret" not in b"".join(chunks)


# -- the HTTP client ------------------------------------------------------------------------------------------
def settings(**overrides) -> BackendSettings:
    return BackendSettings(_env_file=None, **overrides)


def http_backend(transport: httpx.AsyncBaseTransport, **overrides) -> HttpBackend:
    return HttpBackend(settings(backend="http", http_url="http://tts.test", http_token=TOKEN, **overrides),
                       transport=transport)


def request() -> CloneRequest:
    return CloneRequest(reference=b"clip", text="Hello.", language="English")


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Progress] = []

    async def __call__(self, progress: Progress) -> None:
        self.seen.append(progress)


def streaming(*lines: bytes, then=None, content_type: str = NDJSON, status: int = 200, headers: dict | None = None):
    """A server answering `lines` as a stream; `then` (an async function) runs after them (e.g. hangs)."""
    seen_accept = []

    async def body():
        for line in lines:
            yield line
        if then is not None:
            await then()

    def handler(request: httpx.Request) -> httpx.Response:
        seen_accept.append(request.headers.get("accept"))
        return httpx.Response(status, content=body(), headers={"Content-Type": content_type} | (headers or {}))

    return handler


def line(event: dict) -> bytes:
    return json.dumps(event).encode() + b"\n"


PROGRESS_LINES = [line({"progress": report.model_dump()}) for report in REPORTS]
RESULT_LINE = line({"result": result_to_json(RESULT)})


async def test_the_client_hands_on_each_report_in_order_and_returns_the_result():
    recorder = Recorder()
    backend = http_backend(httpx.ASGITransport(app=create_web_app(ReportingService(), token=TOKEN)))
    assert await backend.clone(request(), on_progress=recorder) == RESULT
    assert recorder.seen == REPORTS


async def test_the_client_reads_a_stream_split_anywhere():
    whole = b"".join(PROGRESS_LINES) + RESULT_LINE
    pieces = [whole[i:i + 7] for i in range(0, len(whole), 7)]
    recorder = Recorder()
    assert await http_backend(httpx.MockTransport(streaming(*pieces))).clone(request(), recorder) == RESULT
    assert recorder.seen == REPORTS


async def test_a_callback_that_raises_does_not_fail_the_clone():
    async def broken(progress):
        raise RuntimeError("the chat edit failed")

    backend = http_backend(httpx.MockTransport(streaming(*PROGRESS_LINES, RESULT_LINE)))
    assert await backend.clone(request(), on_progress=broken) == RESULT


async def test_an_older_server_answering_plain_json_still_works():
    handler = streaming(json.dumps(result_to_json(RESULT)).encode(), content_type="application/json")
    recorder = Recorder()
    assert await http_backend(httpx.MockTransport(handler)).clone(request(), recorder) == RESULT
    assert recorder.seen == []


@pytest.mark.parametrize(("lines", "detail"), [
    (PROGRESS_LINES, "ended its stream without a result"),
    ([PROGRESS_LINES[0], b"<html>proxy error</html>\n", RESULT_LINE], "other than a voicebot answer"),
    ([b'{"progress": {"stage": "dreaming"}}\n'], "other than a voicebot answer"),
    ([b'{"progress": {}, "result": {}}\n'], "other than a voicebot answer"),
    ([b"[" * 100_000 + b"\n"], "other than a voicebot answer"),
    ([b'{"result": {"audio_base64": "AAAA"}}\n'], "other than a voicebot answer"),
])
async def test_a_broken_stream_is_a_backend_failure(lines, detail):
    recorder = Recorder()
    with pytest.raises(BackendFailed) as raised:
        await http_backend(httpx.MockTransport(streaming(*lines))).clone(request(), recorder)
    assert raised.value.message == FAILED and detail in raised.value.detail
    assert "http://tts.test/clone" in raised.value.detail


async def test_a_line_past_the_limit_fails_before_much_more_is_read():
    chunk, pulled = b"x" * (1024 * 1024), 0

    async def endless():
        nonlocal pulled
        while True:
            pulled += 1
            yield chunk

    handler = lambda request: httpx.Response(200, content=endless(), headers={"Content-Type": NDJSON})  # noqa: E731
    with pytest.raises(BackendFailed) as raised:
        await http_backend(httpx.MockTransport(handler)).clone(request(), Recorder())
    assert "over" in raised.value.detail and pulled <= max_stream_line_bytes() // len(chunk) + 2


@pytest.mark.parametrize(("error", "expected", "told"), [
    ({"status": 422, "error": "audio_too_short", "message": "The clip is too short."}, InvalidInput,
     "The clip is too short."),
    ({"status": 504, "error": "backend_timeout", "message": "The generation took too long."}, BackendFailed, FAILED),
])
async def test_an_error_line_maps_like_an_error_answer(error, expected, told):
    handler = streaming(*PROGRESS_LINES, line({"error": error}))
    with pytest.raises(expected) as raised:
        await http_backend(httpx.MockTransport(handler)).clone(request(), Recorder())
    assert raised.value.message == told and raised.value.code == error["error"]


async def test_refusals_and_encodings_map_before_any_stream():
    with pytest.raises(BackendNotConfigured) as refused:
        await http_backend(httpx.MockTransport(streaming(b'{"error": "unauthorized", "message": "No."}',
                                                         status=401))).clone(request(), Recorder())
    assert refused.value.message == NOT_SET_UP and "VOICEBOT_HTTP_TOKEN" in refused.value.detail
    gzipped = streaming(RESULT_LINE, headers={"Content-Encoding": "gzip"})
    with pytest.raises(BackendFailed, match="could not make"):
        await http_backend(httpx.MockTransport(gzipped)).clone(request(), Recorder())


async def test_the_deadline_covers_the_whole_stream():
    """Each line arrives in time, but the stream as a whole does not: VOICEBOT_TIMEOUT_S is for the clone."""
    recorder = Recorder()

    async def trickle():
        while True:
            await asyncio.sleep(0.01)
            yield PROGRESS_LINES[2]

    handler = lambda request: httpx.Response(200, content=trickle(), headers={"Content-Type": NDJSON})  # noqa: E731
    with pytest.raises(BackendTimeout) as raised:
        await http_backend(httpx.MockTransport(handler), timeout_s=0.2).clone(request(), recorder)
    assert raised.value.message == TIMED_OUT and "0.2 s" in raised.value.detail and recorder.seen


# -- the Modal client -----------------------------------------------------------------------------------------
def fake_stream(monkeypatch, items: list, then=None) -> list:
    """`modal.Cls.from_name` replaced by a class whose `clone_stream.remote_gen.aio` yields `items`, then runs
    `then` (raise, hang)."""
    calls = []

    async def remote_gen(*args):
        calls.append(args)
        for item in items:
            yield item
        if then is not None:
            await then()

    class Service:
        def __getattr__(self, method):
            assert method == "clone_stream", method
            return SimpleNamespace(remote_gen=SimpleNamespace(aio=remote_gen))

    monkeypatch.setattr(modal.Cls, "from_name", lambda app_name, class_name: Service)
    return calls


MODAL_PROGRESS = [{"progress": report.model_dump()} for report in REPORTS]


async def test_the_modal_client_hands_on_each_report_then_returns_the_result(monkeypatch):
    calls = fake_stream(monkeypatch, [*MODAL_PROGRESS, {"result": RESULT.model_dump()}])
    recorder = Recorder()
    assert await ModalBackend(settings(backend="modal")).clone(request(), on_progress=recorder) == RESULT
    assert recorder.seen == REPORTS and calls == [(request().model_dump(),)]


async def hang():
    await asyncio.sleep(30)


async def not_found():
    raise modal.exception.NotFoundError("App 'voicebot-tts' not found")


@pytest.mark.parametrize(("items", "then", "expected", "told", "detail"), [
    ([*MODAL_PROGRESS, {"status": 422, "error": "audio_too_short", "message": "Too short."}], None, InvalidInput,
     "Too short.", None),
    ([*MODAL_PROGRESS, {"status": 503, "error": "model_missing", "message": "gone"}], None, BackendFailed, FAILED,
     "clone_stream reported model_missing: gone"),
    (MODAL_PROGRESS, None, BackendFailed, FAILED, "ended its stream without a reply"),
    ([{"progress": {"stage": "dreaming"}}], None, BackendFailed, FAILED, "raised ValidationError"),
    (MODAL_PROGRESS[:1], hang, BackendTimeout, TIMED_OUT, "did not answer within 0.2 s"),
    ([], not_found, BackendUnavailable, NOT_SET_UP, "modal deploy -m backend.modal_app"),
])
async def test_the_modal_stream_maps_failures(monkeypatch, items, then, expected, told, detail):
    fake_stream(monkeypatch, items, then)
    with pytest.raises(expected) as raised:
        await ModalBackend(settings(backend="modal", timeout_s=0.2)).clone(request(), on_progress=Recorder())
    assert raised.value.message == told
    assert detail is None or detail in raised.value.detail
