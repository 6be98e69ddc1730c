"""What the tests of the OpenAI-compatible API share: the official `openai` client pointed at an app through an
httpx2 ASGI transport, requests that clone a test clip on the tiny checkpoint, answers decoded and measured, and
the fixtures of an app on the session's engine with a voice catalog in a temporary directory."""

from __future__ import annotations

import base64
import hashlib

import httpx2
import openai
import pytest

from backend.intake import load_audio
from backend.intake.limits import AudioLimits
from backend.voice_catalog import DirectoryVoiceCatalog
from backend.web import create_web_app
from tests.clips import sine_clip

TOKEN = "openai-test-token-0123456789"
IDENTITY = f"token:{hashlib.sha256(TOKEN.encode()).hexdigest()[:12]}"
FAST = {"max_new_tokens": 8, "seed": 1}  # frames per generation: the path matters here, not the model
CLIP = sine_clip(seconds=3.0)
TRANSCRIPT = "A test tone."
ANY_LENGTH = AudioLimits(min_seconds=0.01)  # the tiny model's answers are shorter than a reference clip may be


def clone_fields(clip: bytes = CLIP, **overrides) -> dict:
    fields = {"ref_audio": base64.b64encode(clip).decode(), "ref_text": TRANSCRIPT, "language": "English"}
    return fields | FAST | overrides


def sdk(app, token: str = TOKEN) -> openai.AsyncOpenAI:
    """The official client on `app`, without retries (a refusal must show once, as it is)."""
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    return openai.AsyncOpenAI(api_key=token, base_url="http://tts/v1", max_retries=0,
                              http_client=httpx2.AsyncClient(transport=transport, base_url="http://tts"))


@pytest.fixture(scope="module")
def voices(tmp_path_factory) -> DirectoryVoiceCatalog:
    return DirectoryVoiceCatalog(tmp_path_factory.mktemp("voices"))


@pytest.fixture(scope="module")
def app(engine, voices):
    return create_web_app(engine, token=TOKEN, voices=voices)


@pytest.fixture
def client(app) -> openai.AsyncOpenAI:
    return sdk(app)


async def speak(client: openai.AsyncOpenAI, response_format: str = "wav", **fields) -> bytes:
    extra = clone_fields() | fields
    response = await client.audio.speech.create(model="qwen3-tts", input="Hello there.", voice="clip",
                                                response_format=response_format, extra_body=extra)
    return response.content


def measured(audio_format: str, data: bytes) -> tuple[float, int]:
    """Seconds and sample rate of an answer, decoded by content through the project's own intake."""
    if audio_format == "pcm":
        return len(data) / 2 / 24_000, 24_000
    clip = load_audio(data, ANY_LENGTH)
    assert clip.format == {"wav": "wav", "mp3": "mp3", "opus": "ogg", "flac": "flac"}[audio_format]
    return clip.seconds, clip.sample_rate


async def voice_list(client: openai.AsyncOpenAI) -> dict:
    return await client.get("/audio/voices", cast_to=object)


async def post(app, path: str, **kwargs) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://tts") as raw:
        return await raw.post(path, **kwargs)
