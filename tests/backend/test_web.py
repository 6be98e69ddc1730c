"""The HTTP API (`backend.web`) through FastAPI's TestClient and httpx's ASGI transport: the edge's checks
(token before body, body limits, closed by default, no docs) on a service that must never be reached, and the
routes on the real engine with the tiny checkpoint (`slow`)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading

import httpx
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from backend.engine import Engine, EngineConfig
from backend.errors import EngineConfigError
from backend.intake.limits import AudioLimits
from backend.schema import SEED_MAX, SEED_MIN
from backend.web import create_web_app
from backend.watermark import CHECK_LIMITS
from backend.wire import MAX_MESSAGE_CHARS
from tests.backend import speech_like
from tests.clips import sine_clip

FAST = 8  # frames per test generation: the tiny model's speed does not matter here, only the path through
TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KIB = 1024


def payload(clip: bytes, **overrides) -> dict:
    body = {"text": "Hello there.", "language": "English", "ref_audio_base64": base64.b64encode(clip).decode(),
            "ref_text": "A test tone.", "seed": 1, "max_new_tokens": FAST}
    return body | overrides


@pytest.fixture(scope="module")
def client(engine) -> TestClient:
    return TestClient(create_web_app(engine, token=TOKEN), headers=AUTH)


def assert_wav_24k(audio_base64: str) -> None:
    samples, sample_rate = sf.read(io.BytesIO(base64.b64decode(audio_base64)))
    assert sample_rate == 24_000 and samples.ndim == 1 and samples.size > 0


@pytest.mark.slow
def test_clone_returns_24khz_wav_and_metadata(client, clip):
    response = client.post("/clone", json=payload(clip))
    assert response.status_code == 200, response.text
    body = response.json()
    assert_wav_24k(body["audio_base64"])
    assert body["sample_rate"] == 24_000 and body["frames"] > 0
    assert body["audio_seconds"] == pytest.approx(body["frames"] * 0.08)
    assert set(body["timings"]) == {"clone_s", "generate_s", "decode_s", "watermark_s", "total_s", "queue_s"}
    assert body["variant"] == "test" and body["attention"] == "sdpa" and body["engine_mode"] == "stock"
    assert body["gpu"] is None and isinstance(body["cold_start"], bool)
    assert client.post("/clone", json=payload(clip)).json()["voice_cached"] is True  # same clip + transcript


@pytest.mark.slow
def test_clone_batch(client, clip):
    items = [payload(clip, text="One."), payload(clip, text="Two.", language="Auto")]
    response = client.post("/clone-batch", json={"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["items"]
    assert len(results) == 2
    for result in results:
        assert_wav_24k(result["audio_base64"])


@pytest.mark.slow
def test_health_and_languages(client):
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["variant"] == "test" and health.json()["attention"] == "sdpa"
    languages = client.get("/languages").json()["languages"]
    assert languages[0] == "Auto" and "English" in languages


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"ref_audio_base64": "not base64!"}, "bad_base64"),
        ({"ref_audio_base64": base64.b64encode(b"RIFF but not audio").decode()}, "not_audio"),
        ({"ref_audio_base64": base64.b64encode(sine_clip(seconds=0.3)).decode()}, "audio_too_short"),
        ({"language": "Klingon"}, "unknown_language"),
        ({"text": "   "}, "empty_text"),
        ({"text": None}, "invalid_request"),
    ],
)
def test_bad_requests_are_422_with_code(client, clip, overrides, code):
    response = client.post("/clone", json=payload(clip, **overrides))
    assert response.status_code == 422
    assert response.json()["error"] == code and response.json()["message"]


@pytest.mark.slow
def test_batch_limits(client, clip):
    assert client.post("/clone-batch", json={"items": []}).json()["error"] == "invalid_request"
    bad = client.post("/clone-batch", json={"items": [payload(clip), payload(clip), payload(clip, language="xx")]})
    assert bad.status_code == 422 and bad.json()["error"] == "unknown_language"
    assert bad.json()["message"].startswith("items.2: Unknown language 'xx'")  # which item, then what


@pytest.mark.slow
def test_every_batch_item_generates_with_its_own_seed(client, clip):
    """Each seeded item's audio is the audio of the same request cloned alone, whatever its neighbours."""
    items = [payload(clip, text="Same words.", seed=1), payload(clip, text="Same words.", seed=2),
             payload(clip, text="Same words.", seed=None)]
    batch = client.post("/clone-batch", json={"items": items})
    assert batch.status_code == 200, batch.text
    alone = [client.post("/clone", json=item).json()["audio_base64"] for item in items[:2]]
    assert alone[0] != alone[1]  # the seed matters for this model, so the comparison below means something
    assert [result["audio_base64"] for result in batch.json()["items"][:2]] == alone


@pytest.mark.slow
@pytest.mark.parametrize("seed", [SEED_MIN, SEED_MAX])
def test_the_seed_range_is_the_engines(client, clip, seed):
    assert client.post("/clone", json=payload(clip, seed=seed)).status_code == 200


@pytest.mark.slow
def test_an_echoed_value_is_cut_short(client, clip):
    response = client.post("/clone", json=payload(clip, language="x" * 1_000_000))
    assert response.status_code == 422 and response.json()["error"] == "unknown_language"
    assert len(response.json()["message"]) <= MAX_MESSAGE_CHARS and "x" * 100 not in response.text


class BrokenService:
    """A service whose model cannot load (503) or that crashes (500)."""

    def health(self):
        raise EngineConfigError("flash-attn is not importable here.", code="flash_attn_missing")

    def languages(self):
        raise RuntimeError("CUDA error: secret internals")


def test_server_errors_are_5xx_without_internals():
    client = TestClient(create_web_app(BrokenService(), open_access=True), raise_server_exceptions=False)
    unavailable = client.get("/health")
    assert unavailable.status_code == 503
    assert unavailable.json() == {"error": "flash_attn_missing", "message": "flash-attn is not importable here."}
    crashed = client.get("/languages")
    assert crashed.status_code == 500 and crashed.json()["error"] == "internal"
    assert "secret" not in crashed.text


@pytest.mark.slow
def test_bearer_token(engine):
    client = TestClient(create_web_app(engine, token="s3cret"))
    assert client.get("/languages").status_code == 401
    wrong = client.get("/languages", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    assert client.get("/languages", headers={"Authorization": "Bearer s3cret"}).status_code == 200


class BlockingService:
    """`clone` blocks its thread until released, like a long generation holding the engine."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def clone(self, request):
        assert self.release.wait(timeout=10), "clone was never released"
        raise EngineConfigError("released")

    def languages(self):
        return ["Auto"]


async def test_a_running_generation_does_not_block_the_server():
    service = BlockingService()
    transport = httpx.ASGITransport(app=create_web_app(service, open_access=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        clone = asyncio.create_task(client.post("/clone", json=payload(sine_clip())))
        await asyncio.sleep(0.05)
        languages = await asyncio.wait_for(client.get("/languages"), timeout=5)  # answered while clone blocks
        assert languages.json() == {"languages": ["Auto"]} and not clone.done()
        service.release.set()
        assert (await clone).status_code == 503


# -- the edge: nothing below reaches the service ----------------------------------------------------------
class NeverCalled:
    """A service the edge must answer for by itself: any use of it fails the test."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the request reached the service ({name})")


class CountingBody:
    """A request body streamed in chunks (chunked transfer), counting how many the server pulled."""

    def __init__(self, chunk: bytes, chunks: int) -> None:
        self.chunk, self.chunks, self.sent = chunk, chunks, 0

    async def __aiter__(self):
        for _ in range(self.chunks):
            self.sent += 1
            yield self.chunk


async def post(app, path: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tts") as client:
        return await client.post(path, **kwargs)


ROUTES = [("POST", "/clone"), ("POST", "/clone-batch"), ("GET", "/health"), ("GET", "/languages"),
          ("POST", "/check"), ("POST", "/forget-voices"), ("GET", "/docs"), ("GET", "/redoc"), ("GET", "/openapi.json"),
          ("GET", "/no-such-route")]


@pytest.mark.parametrize("token", [None, "", "   "])
def test_without_a_token_the_app_is_closed(token):
    """An empty or blank token is no token, and no token means every route refuses: /health and the docs too."""
    client = TestClient(create_web_app(NeverCalled(), token=token))
    for method, path in ROUTES:
        response = client.request(method, path, headers={"Authorization": "Bearer "})
        assert (response.status_code, response.json()["error"]) == (401, "unauthorized"), path


def test_with_a_token_every_route_requires_it():
    client = TestClient(create_web_app(NeverCalled(), token=TOKEN, docs=True))
    wrong = ["Bearer wrong", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x"]
    for header in [{}] + [{"Authorization": value} for value in wrong]:
        for method, path in ROUTES:
            response = client.request(method, path, headers=header)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", (header, path)
    assert client.get("/openapi.json", headers=AUTH).status_code == 200


def test_a_token_and_open_access_contradict():
    with pytest.raises(ValueError, match="contradict"):
        create_web_app(NeverCalled(), token=TOKEN, open_access=True)


def test_docs_are_off_unless_asked_for():
    closed_docs = TestClient(create_web_app(NeverCalled(), open_access=True))
    assert [closed_docs.get(path).status_code for path in ("/docs", "/redoc", "/openapi.json")] == [404] * 3
    with_docs = TestClient(create_web_app(NeverCalled(), open_access=True, docs=True))
    assert [with_docs.get(path).status_code for path in ("/docs", "/redoc", "/openapi.json")] == [200] * 3


@pytest.mark.parametrize("path", ["/clone", "/clone-stream", "/clone-batch", "/check", "/forget-voices"])
async def test_the_token_is_checked_before_the_body_is_read(path):
    """A stranger's 400 MiB body is refused without pulling a single chunk; malformed JSON is a 401, not a 422."""
    app = create_web_app(NeverCalled(), token=TOKEN)
    body = CountingBody(b"x" * (1024 * KIB), 400)
    response = await post(app, path, content=body, headers={"Authorization": "Bearer wrong"})
    assert (response.status_code, response.json()["error"], body.sent) == (401, "unauthorized", 0)
    malformed = await post(app, path, content=b'{"text": ', headers={"Content-Type": "application/json"})
    assert malformed.status_code == 401


SMALL = AudioLimits(max_bytes=3 * KIB)  # a /clone body limit of a few KiB, so the tests send little


@pytest.mark.parametrize("declared", [None, "200", "100000000"], ids=["chunked", "lying", "too-large"])
@pytest.mark.parametrize("path", ["/clone", "/clone-stream", "/clone-batch", "/check", "/forget-voices"])
async def test_an_oversized_body_is_refused_while_it_is_read(path, declared):
    """413 in the error shape once the bytes that arrived pass the limit, whatever Content-Length says (missing,
    smaller than the body, or larger than the limit, in which case nothing is read at all)."""
    app = create_web_app(NeverCalled(), token=TOKEN, audio_limits=SMALL, max_text_chars=10)
    limit = next(route.max_body_size for route in app.routes if getattr(route, "path", None) == path)
    body = CountingBody(b"x" * KIB, 4 * limit // KIB)
    headers = AUTH | ({"Content-Length": declared} if declared else {})
    response = await post(app, path, content=body, headers=headers)
    assert response.status_code == 413, response.text
    assert response.json() == {"error": "body_too_large",
                               "message": f"The request body is over the limit of {limit:,} bytes."}
    assert body.sent <= (0 if declared == "100000000" else limit // KIB + 1)


def test_the_body_limits_follow_the_clip_and_text_limits():
    """The largest valid request fits (a clip at its size limit, texts at theirs), and /clone-batch takes
    `MAX_BATCH_ITEMS` of them."""
    app = create_web_app(NeverCalled(), token=TOKEN)
    limits = {route.path: route.max_body_size for route in app.routes if getattr(route, "max_body_size", None)}
    clip = base64.b64encode(bytes(AudioLimits().max_bytes)).decode()
    largest = httpx.Request("POST", "/", json=payload(b"", ref_audio_base64=clip, text="😀" * 1000,
                                                      ref_text="😀" * 1000, seed=SEED_MIN, language="Portuguese"))
    assert len(largest.read()) <= limits["/clone"] < 15 * 1024 * KIB
    assert limits["/clone-batch"] >= 16 * limits["/clone"]


@pytest.mark.parametrize(("seed", "field"), [(SEED_MAX + 1, "seed"), (SEED_MIN - 1, "seed"), (1.5, "seed")])
def test_seeds_outside_the_engines_range_are_422(seed, field):
    client = TestClient(create_web_app(NeverCalled(), token=TOKEN), headers=AUTH)
    response = client.post("/clone", json=payload(sine_clip(), seed=seed))
    assert (response.status_code, response.json()["error"]) == (422, "invalid_request")
    assert response.json()["message"] == f"Invalid or missing fields: {field}."


def test_a_bad_batch_item_is_named():
    client = TestClient(create_web_app(NeverCalled(), token=TOKEN), headers=AUTH)
    items = [payload(b"", seed=1)] * 3 + [payload(b"", seed=SEED_MAX + 1)]
    response = client.post("/clone-batch", json={"items": items})
    assert response.status_code == 422 and response.json()["message"] == "Invalid or missing fields: items.3.seed."
    malformed = client.post("/clone-batch", content=b'{"items": [', headers={"Content-Type": "application/json"})
    assert malformed.status_code == 422 and malformed.json()["message"] == "Invalid or missing fields: body."


# -- /check and /forget-voices: served by an engine whose TTS model never loads ----------------------------------
@pytest.fixture(scope="module")
def modelless() -> TestClient:
    engine = Engine(EngineConfig(model="/nonexistent/checkpoint", device="cpu"))
    return TestClient(create_web_app(engine, token=TOKEN), headers=AUTH)


def check(client: TestClient, audio: bytes) -> httpx.Response:
    return client.post("/check", json={"audio_base64": base64.b64encode(audio).decode()})


def test_check_says_whether_a_clip_is_watermarked(modelless):
    marked, unmarked = check(modelless, speech_like(marked=True)), check(modelless, speech_like(marked=False))
    assert marked.status_code == unmarked.status_code == 200
    assert marked.json()["watermarked"] is True and unmarked.json()["watermarked"] is False
    assert 0 <= unmarked.json()["confidence"] < 0.5 <= marked.json()["confidence"] <= 1


@pytest.mark.parametrize(
    ("body", "code"),
    [({"audio_base64": "not base64!"}, "bad_base64"), ({}, "invalid_request"),
     ({"audio_base64": base64.b64encode(b"hello " * 100).decode()}, "not_audio")],
)
def test_check_refuses_what_it_cannot_check_with_422(modelless, body, code):
    response = modelless.post("/check", json=body)
    assert (response.status_code, response.json()["error"]) == (422, code)


def test_forget_voices_takes_only_digests(modelless):
    assert modelless.post("/forget-voices", json={"clip_sha256s": ["ab" * 32, "CD" * 32]}).json() == {"forgotten": 0}
    for bad in (["ab" * 31], ["../etc/passwd"], [1], "ab" * 32, ["ab" * 32] * 1025):
        response = modelless.post("/forget-voices", json={"clip_sha256s": bad})
        assert (response.status_code, response.json()["error"]) == (422, "invalid_request"), bad


def test_the_check_body_limit_takes_the_largest_clip_it_checks():
    app = create_web_app(NeverCalled(), token=TOKEN)
    limits = {route.path: route.max_body_size for route in app.routes if getattr(route, "max_body_size", None)}
    clip = base64.b64encode(bytes(CHECK_LIMITS.max_bytes)).decode()
    assert len(httpx.Request("POST", "/", json={"audio_base64": clip}).read()) <= limits["/check"]
    assert limits["/check"] < 2 * CHECK_LIMITS.max_bytes


def test_forget_voices_takes_the_most_digests_however_json_escapes_them(modelless):
    escaped = '"' + "".join(f"\\u{ord(char):04x}" for char in "ab" * 32) + '"'
    body = '{"clip_sha256s": [' + ", ".join([escaped] * 1024) + "]}"
    response = modelless.post("/forget-voices", content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (200, {"forgotten": 0})


# -- /clone-stream ----------------------------------------------------------------------------------------
class StreamingService:
    """Streams `seconds` of a ramp in chunks of 0.3 s, then fails with `error` if given."""

    def __init__(self, seconds: float = 1.2, error: Exception | None = None) -> None:
        self.seconds, self.error = seconds, error
        self.validated = 0

    def validate(self, request):
        self.validated += 1
        if request.language == "Klingon":
            from backend.errors import InvalidInput

            raise InvalidInput("Unknown language 'Klingon'.", code="unknown_language")

    def clone_stream(self, request):
        samples = np.linspace(-0.5, 0.5, int(self.seconds * 24_000), dtype=np.float32)
        for start in range(0, len(samples), 7200):
            yield samples[start:start + 7200]
        if self.error is not None:
            raise self.error


def stream_lines(response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines()]


def test_clone_stream_answers_pcm_lines_then_the_end():
    client = TestClient(create_web_app(StreamingService(), token=TOKEN), headers=AUTH)
    response = client.post("/clone-stream", json=payload(sine_clip()))
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    lines = stream_lines(response)
    assert lines[-1] == {"end": {}} and all(set(line) == {"audio"} for line in lines[:-1])
    pcm = b"".join(base64.b64decode(line["audio"]) for line in lines[:-1])
    samples = np.frombuffer(pcm, dtype="<i2") / 32767.0
    assert len(samples) == 1.2 * 24_000 and np.abs(samples - np.linspace(-0.5, 0.5, 28_800)).max() < 1e-4


def test_clone_stream_refuses_bad_input_before_streaming():
    service = StreamingService()
    client = TestClient(create_web_app(service, token=TOKEN), headers=AUTH)
    response = client.post("/clone-stream", json=payload(sine_clip(), language="Klingon"))
    assert (response.status_code, response.json()["error"]) == (422, "unknown_language")


def test_a_failure_after_the_first_line_is_the_streams_last_line():
    client = TestClient(create_web_app(StreamingService(error=EngineConfigError("GPU gone", code="gpu_lost")),
                                       token=TOKEN), headers=AUTH, raise_server_exceptions=False)
    lines = stream_lines(client.post("/clone-stream", json=payload(sine_clip())))
    assert "audio" in lines[0] and lines[-1] == {"error": {"status": 503, "error": "gpu_lost", "message": "GPU gone"}}
    crashed = TestClient(create_web_app(StreamingService(error=RuntimeError("secret path /srv")), token=TOKEN),
                         headers=AUTH, raise_server_exceptions=False)
    last = stream_lines(crashed.post("/clone-stream", json=payload(sine_clip())))[-1]
    assert last["error"]["error"] == "internal" and "secret" not in json.dumps(last)
