"""The three backend clients and the factory: results, error mapping, a free event loop, no torch on import."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import json
import io
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import modal
import modal.exception
import numpy as np
import pytest
import soundfile as sf
from structlog.testing import capture_logs

from backend import modal_app
from backend.batcher import CloneBatcher
from backend.clients import local
from backend.clients.base import BackendClient
from backend.clients.factory import create_backend
from backend.clients.failures import FAILED, NOT_SET_UP, TIMED_OUT, UNREACHABLE
from backend.clients.http_client import HttpBackend
from backend.clients.local import LocalBackend
from backend.clients.modal_client import ModalBackend
from backend.errors import (
    BackendFailed,
    BackendNotConfigured,
    BackendTimeout,
    BackendUnavailable,
    EngineConfigError,
    InvalidInput,
)
from backend.schema import CloneRequest, CloneResult
from backend.settings import BackendSettings
from backend.web import create_web_app
from tests.backend import load_tiny_checkpoint, speech_like
from tests.backend.test_modal_app import local_stream

ROOT = Path(__file__).resolve().parents[2]


def settings(**overrides) -> BackendSettings:
    return BackendSettings(_env_file=None, **overrides)


def request(clip: bytes, **overrides) -> CloneRequest:
    fields = dict(reference=clip, text="Hello there.", language="English", ref_text="A tone.", seed=1,
                  max_new_tokens=8)
    return CloneRequest(**(fields | overrides))


def assert_wav_24k(result: CloneResult) -> None:
    samples, sample_rate = sf.read(io.BytesIO(result.audio))
    assert sample_rate == 24_000 and samples.size == result.frames * 1920 > 0


async def exercise(backend: BackendClient, clip: bytes, variant: str) -> None:
    """The happy path every client must serve."""
    stages = []

    async def on_progress(progress):
        stages.append(progress.stage)

    result = await backend.clone(request(clip), on_progress=on_progress)
    assert stages[0] == "cloning" and set(stages) <= {"cloning", "generating"} and result.variant == variant
    assert_wav_24k(result)
    # the same request streamed: the same samples (the CPU engine's stream is its whole clip; remote streams
    # carry 16-bit PCM, as the WAV does)
    chunks = [chunk async for chunk in backend.clone_stream(request(clip))]
    assert chunks and all(chunk.dtype == np.float32 for chunk in chunks)
    streamed, (whole, _) = np.concatenate(chunks), sf.read(io.BytesIO(result.audio), dtype="float32")
    assert len(streamed) == len(whole) and np.abs(streamed - whole).max() < 1e-4
    with pytest.raises(InvalidInput) as raised:
        async for _ in backend.clone_stream(request(clip, language="Klingon")):
            pass
    assert raised.value.code == "unknown_language"
    batch = await backend.clone_batch([request(clip, text="One."), request(clip, text="Two.")])
    assert len(batch) == 2 and all(item.voice_cached for item in batch)
    assert (await backend.health()).variant == variant
    assert "English" in await backend.languages()
    with pytest.raises(InvalidInput) as raised:
        await backend.clone(request(clip, language="Klingon"))
    assert raised.value.code == "unknown_language" and "Klingon" in raised.value.message
    # the watermark check and forget-me
    assert (await backend.check_watermark(speech_like(marked=True))).watermarked
    assert not (await backend.check_watermark(speech_like(marked=False))).watermarked
    with pytest.raises(InvalidInput) as raised:
        await backend.check_watermark(b"plain text, not audio " * 10)
    assert raised.value.code == "not_audio" and raised.value.message.startswith("The clip ")
    digest = hashlib.sha256(clip).hexdigest()
    assert await backend.forget_voices([digest.upper()]) >= 1  # this clip's prompts (one per transcript)
    assert await backend.forget_voices([digest]) == 0


# -- factory and imports ---------------------------------------------------------------------------------
def test_factory_picks_the_configured_backend():
    assert isinstance(create_backend(settings()), LocalBackend)
    assert create_backend(settings(backend="modal")).name == "modal:fa2"
    assert create_backend(settings(backend="modal"), "06b").name == "modal:06b"
    assert create_backend(settings(backend="modal", modal_variants=["sdpa"])).name == "modal:sdpa"
    http = create_backend(settings(backend="http", http_url="http://tts.invalid"))
    assert isinstance(http, HttpBackend) and isinstance(http, BackendClient)
    for unusable in ("", "not a url", "ftp://tts.invalid/"):
        with pytest.raises(BackendNotConfigured) as raised:
            create_backend(settings(backend="http", http_url=unusable))
        assert raised.value.message == NOT_SET_UP and "VOICEBOT_HTTP_URL" in raised.value.detail
    with pytest.raises(BackendNotConfigured) as raised:
        create_backend(settings(backend="modal"), "a100")
    assert raised.value.code == "unknown_variant" and "fa2, sdpa, 06b" in raised.value.detail


def test_client_modules_and_modal_app_do_not_import_torch():
    modules = ["backend.clients.factory", "backend.clients.modal_client", "backend.clients.http_client",
               "backend.clients.local", "backend.modal_app"]
    code = f"import sys\nfor m in {modules!r}: __import__(m)\nprint('torch' in sys.modules, 'fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# -- local -----------------------------------------------------------------------------------------------
@pytest.mark.slow
async def test_local_backend(engine, clip):
    await exercise(LocalBackend(settings(), engine=engine), clip, "test")


@pytest.mark.slow
async def test_local_backend_keeps_the_event_loop_free(engine, clip):
    backend = LocalBackend(settings(), engine=engine)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    await backend.clone(request(clip, max_new_tokens=24, text="A longer sentence to keep the engine busy."))
    elapsed = time.perf_counter() - started
    task.cancel()
    assert elapsed > 0.2 and ticks >= 0.3 * elapsed / 0.01  # a blocked loop would tick about once


@pytest.mark.slow
async def test_local_backend_builds_its_engine_on_first_use(tiny_checkpoint, clip):
    backend = LocalBackend(settings(model=str(tiny_checkpoint), device="cpu"))
    assert (await backend.clone(request(clip))).variant == "local"
    await backend.aclose()


async def test_local_backend_checks_and_forgets_without_building_an_engine():
    """A check needs only the watermarker, and with no engine nothing is cached: neither loads the TTS model."""
    backend = LocalBackend(settings(model="/nonexistent/checkpoint", device="cpu"))
    assert (await backend.check_watermark(speech_like(marked=True))).watermarked
    assert await backend.forget_voices(["ab" * 32]) == 0
    assert backend._engine is None


def test_demo_model_builds_the_random_checkpoint_loudly(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr("backend.engine.checkpoint.build_random_checkpoint",
                        lambda preset, out: built.append((preset, out)))
    with capture_logs() as logs:
        config = local.engine_config(settings(model="demo", checkpoint_dir=tmp_path))
    assert built == [("tiny", tmp_path / "tiny")] and config.model == str(tmp_path / "tiny")
    assert any(log["log_level"] == "warning" and "RANDOM WEIGHTS" in log["message"] for log in logs)


@pytest.mark.parametrize(("failure", "code", "detail"), [
    (RuntimeError("CUDA out of memory"), "backend_failed", "RuntimeError"),
    (EngineConfigError("model directory '/srv/models/x' does not exist.", code="model_missing"), "model_missing",
     "/srv/models/x"),
])
async def test_local_backend_keeps_engine_failures_for_operators(failure, code, detail):
    class Crashing:
        def languages(self):
            raise failure

    with pytest.raises(BackendFailed) as raised:
        await LocalBackend(settings(), engine=Crashing()).languages()
    assert raised.value.message == FAILED and raised.value.code == code and detail in raised.value.detail


# -- modal -----------------------------------------------------------------------------------------------
def test_modal_backend_without_token_says_how_to_log_in(tmp_path):
    """A real `modal.Cls.from_name(...).remote` call, offline: it fails on the missing token before any socket."""
    config = tmp_path / "modal.toml"
    config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")} | {"MODAL_CONFIG_PATH": str(config)}
    code = textwrap.dedent("""
        import asyncio
        from backend.clients.modal_client import ModalBackend
        from backend.errors import BackendNotConfigured
        from backend.settings import BackendSettings
        try:
            asyncio.run(ModalBackend(BackendSettings(_env_file=None, backend="modal")).health())
        except BackendNotConfigured as exc:
            print(exc.operator_text)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    told = out.stdout.splitlines()[-1]  # after the client's own (unconfigured structlog) warning line
    assert told.startswith(NOT_SET_UP) and "MODAL_TOKEN_ID" in told and "modal token new" in told, out.stderr


def fake_lookup(monkeypatch, aio, gen=None) -> list:
    """Replace `modal.Cls.from_name` with a class whose every method's `.remote.aio` is `aio(method, *args)` (and
    `.remote_gen.aio` is `gen(method, *args)`, an async generator)."""
    looked_up = []

    class Service:
        def __getattr__(self, method):
            return SimpleNamespace(remote=SimpleNamespace(aio=lambda *args: aio(method, *args)),
                                   remote_gen=SimpleNamespace(aio=lambda *args: gen(method, *args)))

    def from_name(app_name, class_name):
        looked_up.append((app_name, class_name))
        return Service

    monkeypatch.setattr(modal.Cls, "from_name", from_name)
    return looked_up


def raising(exc: Exception):
    async def aio(method, *args):
        raise exc

    return aio


@pytest.mark.parametrize(
    ("remote_error", "expected", "told", "hint"),
    [
        (modal.exception.NotFoundError("App 'voicebot-tts' not found"), BackendUnavailable, NOT_SET_UP,
         "modal deploy -m backend.modal_app"),
        (modal.exception.AuthError("Token missing"), BackendNotConfigured, NOT_SET_UP, "modal token new"),
        (modal.exception.ConnectionError("no route"), BackendUnavailable, UNREACHABLE, "check the network"),
        (modal.exception.FunctionTimeoutError("timed out"), BackendTimeout, TIMED_OUT, "did not answer"),
        (EngineConfigError("flash-attn is not importable.", code="flash_attn_missing"), BackendFailed, FAILED,
         "flash-attn is not importable"),
        (RuntimeError("CUDA error"), BackendFailed, FAILED, "RuntimeError"),
    ],
)
async def test_modal_backend_maps_failures(monkeypatch, remote_error, expected, told, hint):
    """Users are told what happened; the fix (a command to run, the missing package) is the operators' detail."""
    looked_up = fake_lookup(monkeypatch, raising(remote_error))
    with pytest.raises(expected) as raised:
        await ModalBackend(settings(backend="modal"), "sdpa").languages()
    assert looked_up == [("voicebot-tts", "TTSSdpa")]
    assert raised.value.message == told and hint in raised.value.detail
    if isinstance(remote_error, EngineConfigError):
        assert raised.value.code == "flash_attn_missing"


async def test_modal_backend_passes_bad_input_through_and_hides_other_remote_errors(monkeypatch):
    """A reply envelope's `InvalidInput` is the user's to fix; any other remote error is the operators'."""
    replies = {"languages": {"status": 422, "error": "audio_too_short", "message": "The clip is too short."},
               "health": {"status": 503, "error": "model_missing", "message": "model directory '/srv/x' is gone."}}

    async def reply(method, *args):
        return replies[method]

    fake_lookup(monkeypatch, reply)
    backend = ModalBackend(settings(backend="modal"))
    with pytest.raises(InvalidInput, match="The clip is too short.") as bad_input:
        await backend.languages()
    assert bad_input.value.code == "audio_too_short"
    with pytest.raises(BackendFailed) as failed:
        await backend.health()
    assert failed.value.message == FAILED and failed.value.code == "model_missing"
    assert "/srv/x" in failed.value.detail and "voicebot-tts/TTSFa2" in failed.value.detail


async def test_modal_backend_gives_up_after_timeout_s(monkeypatch):
    async def hang(method, *args):
        await asyncio.sleep(30)

    fake_lookup(monkeypatch, hang)
    with pytest.raises(BackendTimeout) as raised:
        await ModalBackend(settings(backend="modal", timeout_s=0.05)).health()
    assert raised.value.message == TIMED_OUT and "0.05 s" in raised.value.detail


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")  # the volume isn't mounted here
async def test_modal_backend_against_the_modal_classes(monkeypatch, tiny_checkpoint, clip):
    """The round trip through the real class bodies (`.local()` in a thread stands in for `.remote.aio`; an async
    method's `.local()` returns a coroutine, awaited here)."""
    load_tiny_checkpoint(monkeypatch, tiny_checkpoint)
    service = modal_app.TTS06B()
    service.languages.local()  # runs its @modal.enter, which modal 1.6's `.local()` skips before an async method

    async def local_call(method, *args):
        reply = await asyncio.to_thread(getattr(service, method).local, *args)
        return await reply if inspect.isawaitable(reply) else reply

    def local_gen(method, *args):
        return local_stream(service, method, *args)

    fake_lookup(monkeypatch, local_call, local_gen)
    await exercise(ModalBackend(settings(backend="modal"), "06b"), clip, "06b")


# -- http ------------------------------------------------------------------------------------------------
def http_backend(transport: httpx.AsyncBaseTransport, **overrides) -> HttpBackend:
    return HttpBackend(settings(backend="http", http_url="http://tts.test", **overrides), transport=transport)


@pytest.mark.slow
async def test_http_backend_against_the_web_app(engine, clip):
    """Served as the Modal container serves it (the engine behind a batcher), so `clone` streams progress."""
    service = modal_app._BatchedEngine(engine, CloneBatcher.for_engine(engine))
    transport = httpx.ASGITransport(app=create_web_app(service, token="s3cret-0123456789"))
    backend = http_backend(transport, http_token="s3cret-0123456789")
    await exercise(backend, clip, "test")
    await backend.aclose()


async def test_http_backend_sends_the_token(engine):
    transport = httpx.ASGITransport(app=create_web_app(engine, token="s3cret"))
    assert "English" in await http_backend(transport, http_token="s3cret").languages()
    with pytest.raises(BackendNotConfigured) as raised:
        await http_backend(transport, http_token="wrong").languages()
    assert raised.value.message == NOT_SET_UP and "VOICEBOT_HTTP_TOKEN" in raised.value.detail


def answering(status: int, **kwargs):
    return lambda request: httpx.Response(status, **kwargs)


def failing(exc_type: type[httpx.TransportError]):
    def handler(request):
        raise exc_type("simulated", request=request)

    return handler


@pytest.mark.parametrize(
    ("handler", "expected", "code", "told", "detail"),
    [
        (answering(422, json={"error": "audio_too_short", "message": "Too short."}), InvalidInput, "audio_too_short",
         "Too short.", None),
        (answering(503, json={"error": "flash_attn_missing", "message": "No FA2."}), BackendFailed,
         "flash_attn_missing", FAILED, "(HTTP 503) reported flash_attn_missing: No FA2."),
        (answering(502, text="<html>Bad gateway</html>"), BackendFailed, "backend_failed", FAILED, "HTTP 502"),
        (answering(404, json={"error": "not_found", "message": "Not Found"}), BackendUnavailable,
         "backend_unavailable", NOT_SET_UP, "http://tts.test/health does not exist (HTTP 404)"),
        (failing(httpx.ConnectError), BackendUnavailable, "backend_unavailable", UNREACHABLE,
         "http://tts.test/health cannot be reached (ConnectError): check VOICEBOT_HTTP_URL"),
        (failing(httpx.ReadTimeout), BackendTimeout, "backend_timeout", TIMED_OUT, "did not answer within 300 s"),
    ],
)
async def test_http_backend_maps_failures(handler, expected, code, told, detail):
    """Users read what happened; the URL, the status and the setting to check are the operators' detail."""
    with pytest.raises(expected) as raised:
        await http_backend(httpx.MockTransport(handler)).health()
    assert raised.value.code == code and raised.value.message == told
    assert detail is None and raised.value.detail is None or detail in raised.value.detail


async def test_http_backend_sends_the_url_query_and_logs_only_the_redacted_url():
    """A query in VOICEBOT_HTTP_URL (an API key) goes with every request; logs and details never show it."""
    seen = []

    def handler(request):
        seen.append(request.url)
        return httpx.Response(503, json={"error": "busy", "message": "Overloaded."})

    backend = HttpBackend(settings(backend="http", http_url="https://bot:hunter2@tts.test/v1?api_key=k3y-secret"),
                          transport=httpx.MockTransport(handler))
    with capture_logs() as logs, pytest.raises(BackendFailed) as raised:
        await backend.health()
    assert str(seen[0]) == "https://bot:hunter2@tts.test/v1/health?api_key=k3y-secret"
    assert raised.value.detail == "https://tts.test/v1/health (HTTP 503) reported busy: Overloaded."
    [line] = logs
    assert line["event"] == "http.failed" and line["url"] == "https://tts.test/v1/health"
    assert "hunter2" not in repr(logs) and "k3y-secret" not in repr(logs)


@pytest.mark.parametrize("answer", [{"status": "ok"}, [1, 2], {"languages": None}, "just a string"])
async def test_http_backend_refuses_answers_of_the_wrong_shape(answer, clip):
    """Another server at VOICEBOT_HTTP_URL (or an incompatible version) answers 200 with other JSON."""
    backend = http_backend(httpx.MockTransport(answering(200, json=answer)))
    for call in (backend.health(), backend.languages(),
                 backend.clone(CloneRequest(reference=clip, text="Hi")), backend.clone_batch([])):
        with pytest.raises(BackendFailed) as raised:
            await call
        assert raised.value.message == FAILED and "other than a voicebot answer" in raised.value.detail


async def test_http_backend_forgets_any_number_of_clips_in_bounded_calls():
    """Bodies of at most MAX_FORGET_ITEMS digests each; a malformed digest is refused before anything is sent."""
    bodies = []

    def handler(request):
        bodies.append(json.loads(request.content)["clip_sha256s"])
        return httpx.Response(200, json={"forgotten": len(bodies[-1])})

    backend = http_backend(httpx.MockTransport(handler))
    digests = [hashlib.sha256(str(index).encode()).hexdigest() for index in range(1500)]
    assert await backend.forget_voices(digests) == 1500
    assert [len(body) for body in bodies] == [1024, 476] and sum(bodies, []) == digests
    assert await backend.forget_voices([]) == 0 and len(bodies) == 2
    with pytest.raises(InvalidInput) as raised:
        await backend.forget_voices([digests[0], "not-a-digest"])
    assert raised.value.code == "invalid_request" and "clip_sha256s.1" in raised.value.message and len(bodies) == 2


async def test_modal_backend_checks_and_forgets_through_its_methods(monkeypatch):
    calls = []

    async def reply(method, *args):
        calls.append((method, args))
        return {"result": {"watermarked": True, "confidence": 0.9} if method == "check_watermark" else 3}

    fake_lookup(monkeypatch, reply)
    backend = ModalBackend(settings(backend="modal"))
    assert (await backend.check_watermark(b"audio")).confidence == 0.9
    assert await backend.forget_voices(["AB" * 32]) == 3
    assert calls == [("check_watermark", (b"audio",)), ("forget_voices", (["ab" * 32],))]


# -- streams ---------------------------------------------------------------------------------------------
def streamed(status: int, parts: list[bytes], **headers: str):
    """An answer streamed part by part, as a server sends it (a MockTransport answer of bytes is not a stream)."""
    async def body():
        for part in parts:
            yield part

    return lambda request: httpx.Response(status, content=body(), headers=headers)


def ndjson(*events: dict, tail: bytes = b"", **headers: str):
    lines = [json.dumps(event).encode() + b"\n" for event in events] + ([tail] if tail else [])
    return streamed(200, lines, **{"content-type": "application/x-ndjson"} | headers)


PIECE = {"audio": base64.b64encode(b"\x00\x10" * 2400).decode()}  # 0.1 s


async def drain(stream) -> list:
    return [chunk async for chunk in stream]


async def test_http_stream_gives_samples_until_its_end_line(clip):
    chunks = await drain(http_backend(httpx.MockTransport(ndjson(PIECE, PIECE, {"end": {}}))).clone_stream(
        request(clip)))
    assert [len(chunk) for chunk in chunks] == [2400, 2400]


@pytest.mark.parametrize(("handler", "expected", "detail"), [
    (ndjson(PIECE), BackendFailed, "ended its stream before its end line"),  # a cut connection
    (ndjson(PIECE, {"error": {"status": 422, "error": "unknown_language", "message": "No."}}), InvalidInput, None),
    (ndjson(PIECE, tail=b"x" * 200_000), BackendFailed, "sent a line over"),
    (ndjson({"audio": "AAA"}), BackendFailed, "other than a voicebot answer"),
    (ndjson(PIECE, {"end": {}}, **{"content-encoding": "gzip"}), BackendFailed, "content encoding"),
    (streamed(401, [b'{"error": "unauthorized", "message": "no"}']), BackendNotConfigured, "VOICEBOT_HTTP_TOKEN"),
    (streamed(404, [b'{"error": "not_found", "message": "Not Found"}']), BackendUnavailable, "does not exist"),
    (streamed(500, [b"x" * 100_000] * 3), BackendFailed, "answer over"),
])
async def test_http_stream_failures(handler, expected, detail, clip):
    with pytest.raises(expected) as raised:
        await drain(http_backend(httpx.MockTransport(handler)).clone_stream(request(clip)))
    assert detail is None or detail in raised.value.detail


async def test_http_stream_has_one_deadline(clip):
    async def slow_body():
        yield json.dumps(PIECE).encode() + b"\n"
        await asyncio.sleep(10)

    transport = httpx.MockTransport(lambda req: httpx.Response(200, content=slow_body(),
                                                               headers={"content-type": "application/x-ndjson"}))
    with pytest.raises(BackendTimeout):
        await drain(http_backend(transport, timeout_s=0.1).clone_stream(request(clip)))


def stream_of(*items):
    async def gen(method, *args):
        assert method == "stream_audio"
        for item in items:
            yield item

    return gen


@pytest.mark.parametrize(("items", "expected", "detail"), [
    ([{"audio": b"\x00\x10" * 100}], BackendFailed, "ended its stream before its end item"),
    ([{"audio": b"\x00"}], BackendFailed, "other than a voicebot audio stream"),
    ([{"status": 422, "error": "x", "message": "y"}], BackendFailed, "other than a voicebot audio stream"),
    ([{"error": {"status": 422, "error": "unknown_language", "message": "No."}}], InvalidInput, None),
])
async def test_modal_stream_failures(monkeypatch, items, expected, detail, clip):
    fake_lookup(monkeypatch, raising(AssertionError("not a stream")), stream_of(*items))
    with pytest.raises(expected) as raised:
        await drain(ModalBackend(settings(backend="modal")).clone_stream(request(clip)))
    assert detail is None or detail in raised.value.detail


async def test_modal_stream_gives_samples_until_its_end_item(monkeypatch, clip):
    fake_lookup(monkeypatch, raising(AssertionError("not a stream")),
                stream_of({"audio": b"\x00\x10" * 100}, {"audio": b"\x00\x10" * 50}, {"end": {}}))
    chunks = await drain(ModalBackend(settings(backend="modal")).clone_stream(request(clip)))
    assert [len(chunk) for chunk in chunks] == [100, 50]
