"""The HTTP API (`backend.web`) through FastAPI's TestClient, on the real engine with the tiny checkpoint."""

from __future__ import annotations

import asyncio
import base64
import io
import threading

import httpx
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from backend.errors import EngineConfigError
from backend.web import create_web_app
from tests.clips import sine_clip

pytestmark = pytest.mark.slow
FAST = 8  # frames per test generation: the tiny model's speed does not matter here, only the path through


def payload(clip: bytes, **overrides) -> dict:
    body = {"text": "Hello there.", "language": "English", "ref_audio_base64": base64.b64encode(clip).decode(),
            "ref_text": "A test tone.", "seed": 1, "max_new_tokens": FAST}
    return body | overrides


@pytest.fixture(scope="module")
def client(engine) -> TestClient:
    return TestClient(create_web_app(engine))


def assert_wav_24k(audio_base64: str) -> None:
    samples, sample_rate = sf.read(io.BytesIO(base64.b64decode(audio_base64)))
    assert sample_rate == 24_000 and samples.ndim == 1 and samples.size > 0


def test_clone_returns_24khz_wav_and_metadata(client, clip):
    response = client.post("/clone", json=payload(clip))
    assert response.status_code == 200, response.text
    body = response.json()
    assert_wav_24k(body["audio_base64"])
    assert body["sample_rate"] == 24_000 and body["frames"] > 0
    assert body["audio_seconds"] == pytest.approx(body["frames"] * 0.08)
    assert set(body["timings"]) == {"clone_s", "generate_s", "decode_s", "total_s", "queue_s"}
    assert body["variant"] == "test" and body["attention"] == "sdpa" and body["engine_mode"] == "stock"
    assert body["gpu"] is None and isinstance(body["cold_start"], bool)
    assert client.post("/clone", json=payload(clip)).json()["voice_cached"] is True  # same clip + transcript


def test_clone_batch(client, clip):
    items = [payload(clip, text="One."), payload(clip, text="Two.", language="Auto")]
    response = client.post("/clone-batch", json={"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["items"]
    assert len(results) == 2
    for result in results:
        assert_wav_24k(result["audio_base64"])


def test_health_and_languages(client):
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["variant"] == "test" and health.json()["attention"] == "sdpa"
    languages = client.get("/languages").json()["languages"]
    assert languages[0] == "Auto" and "English" in languages


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


def test_batch_limits(client, clip):
    assert client.post("/clone-batch", json={"items": []}).json()["error"] == "invalid_request"
    bad = client.post("/clone-batch", json={"items": [payload(clip), payload(clip, language="xx")]})
    assert bad.status_code == 422 and bad.json()["error"] == "unknown_language"


class BrokenService:
    """A service whose model cannot load (503) or that crashes (500)."""

    def health(self):
        raise EngineConfigError("flash-attn is not importable here.", code="flash_attn_missing")

    def languages(self):
        raise RuntimeError("CUDA error: secret internals")


def test_server_errors_are_5xx_without_internals():
    client = TestClient(create_web_app(BrokenService()), raise_server_exceptions=False)
    unavailable = client.get("/health")
    assert unavailable.status_code == 503
    assert unavailable.json() == {"error": "flash_attn_missing", "message": "flash-attn is not importable here."}
    crashed = client.get("/languages")
    assert crashed.status_code == 500 and crashed.json()["error"] == "internal"
    assert "secret" not in crashed.text


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
    transport = httpx.ASGITransport(app=create_web_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        clone = asyncio.create_task(client.post("/clone", json=payload(sine_clip())))
        await asyncio.sleep(0.05)
        languages = await asyncio.wait_for(client.get("/languages"), timeout=5)  # answered while clone blocks
        assert languages.json() == {"languages": ["Auto"]} and not clone.done()
        service.release.set()
        assert (await clone).status_code == 503
