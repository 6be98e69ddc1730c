"""The OpenAI-compatible API (`backend.openai_api`, mounted at /v1 of `backend.web`) through the official `openai`
client: speech in every format on the tiny checkpoint (decoded and measured), whole and streamed, and every
refusal with the status, exception class and error shape the SDK expects, the edge's (token, body limits)
included."""

from __future__ import annotations

import base64
import io

import httpx2
import numpy as np
import openai
import pytest
import soundfile as sf

from backend.errors import EngineConfigError
from backend.intake.limits import AudioLimits
from backend.openai_api.encoding import AudioFormat, encode_whole, wav_pcm16
from backend.watermark import detect, shared_watermarker
from backend.web import create_web_app
from backend.wire import MAX_MESSAGE_CHARS
from tests.backend import openai_client, speech_like
from tests.backend.openai_client import (
    FAST,
    TOKEN,
    clone_fields,
    measured,
    post,
    sdk,
    speak,
    voice_list,
)
from tests.backend.test_web import CountingBody, NeverCalled
from tests.clips import sine_clip

app, client, voices = openai_client.app, openai_client.client, openai_client.voices  # the shared fixtures


# -- speech ---------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_speech_in_every_format_decodes_to_the_same_24khz_audio(client, stream):
    reference = await speak(client, "wav")
    seconds, rate = measured("wav", reference)
    assert rate == 24_000 and 0 < seconds <= 8 * 0.08
    for audio_format in AudioFormat:
        if stream:
            async with client.audio.speech.with_streaming_response.create(
                    model="qwen3-tts", input="Hello there.", voice="clip", response_format=audio_format.value,
                    stream_format="audio", extra_body=clone_fields()) as response:
                data = b"".join([chunk async for chunk in response.iter_bytes()])
                media_type = response.headers["content-type"]
        else:
            raw = await client.audio.speech.with_raw_response.create(
                model="qwen3-tts", input="Hello there.", voice="clip", response_format=audio_format.value,
                extra_body=clone_fields())
            data, media_type = raw.content, raw.headers["content-type"]
        got_seconds, got_rate = measured(audio_format.value, data)
        assert got_rate == 24_000, audio_format
        assert got_seconds == pytest.approx(seconds, abs=0.1), audio_format  # mp3 pads to whole frames
        assert media_type.startswith("audio/"), audio_format
        if audio_format is AudioFormat.PCM:  # the same samples as the WAV, header dropped
            assert np.array_equal(np.frombuffer(data, "<i2"), sf.read(io.BytesIO(reference), dtype="int16")[0])


@pytest.mark.slow
async def test_mp3_is_the_default_format_as_in_openais_api(client):
    response = await client.audio.speech.create(model="tts-1", input="Hello there.", voice="clip",
                                                extra_body=clone_fields())
    assert measured("mp3", response.content)[1] == 24_000


@pytest.mark.parametrize("audio_format", [AudioFormat.MP3, AudioFormat.OPUS, AudioFormat.FLAC])
async def test_the_watermark_survives_every_encoding(audio_format):
    """The answers are re-encoded from the engine's marked clip: the mark must still be found in them."""
    marked = speech_like(marked=True)
    encoded = await encode_whole(wav_pcm16(marked), audio_format)
    assert measured(audio_format.value, encoded)[1] == 24_000
    assert detect(encoded, shared_watermarker("cpu")).watermarked


# -- refusals -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "error", "code", "param"),
    [
        ({"voice": "nobody", "extra_body": FAST}, openai.NotFoundError, "voice_not_found", "voice"),
        ({"voice": {"id": "nobody"}, "extra_body": FAST}, openai.NotFoundError, "voice_not_found", "voice"),
        ({"voice": "v" * 100_000, "extra_body": FAST}, openai.BadRequestError, "invalid_request", "voice"),
        ({"voice": {"id": "x", "name": "y"}, "extra_body": FAST}, openai.BadRequestError, "invalid_request", "voice"),
        ({"model": "whisper-1"}, openai.NotFoundError, "model_not_found", "model"),
        ({"response_format": "aac"}, openai.BadRequestError, "unsupported_format", "response_format"),
        ({"speed": 1.5}, openai.BadRequestError, "unsupported_speed", "speed"),
        ({"speed": 0.25}, openai.BadRequestError, "unsupported_speed", "speed"),
        ({"stream_format": "sse"}, openai.BadRequestError, "unsupported_stream_format", "stream_format"),
        ({"extra_body": clone_fields(stream=True)}, openai.BadRequestError, "unsupported_stream_format", "stream"),
        ({"instructions": "Speak cheerfully."}, openai.BadRequestError, "unsupported_instructions", "instructions"),
        ({"input": "x" * 1001}, openai.BadRequestError, "text_too_long", "input"),
        ({"input": "\u200b \u2060"}, openai.BadRequestError, "empty_text", "input"),
        ({"extra_body": clone_fields(ref_audio="not base64!")}, openai.BadRequestError, "bad_base64", "ref_audio"),
        ({"extra_body": clone_fields(ref_audio="https://example.com/me.wav")}, openai.BadRequestError,
         "ref_audio_not_inline", "ref_audio"),
        ({"extra_body": clone_fields(ref_audio="file:///etc/passwd")}, openai.BadRequestError,
         "ref_audio_not_inline", "ref_audio"),
        ({"extra_body": clone_fields(task_type="VoiceDesign")}, openai.BadRequestError, "unsupported_task_type",
         "task_type"),
        ({"extra_body": clone_fields(reference_audio="...")}, openai.BadRequestError, "invalid_request",
         "reference_audio"),
        ({"extra_body": clone_fields(seed=2**64)}, openai.BadRequestError, "invalid_request", "seed"),
    ],
)
async def test_a_refused_speech_request_names_its_field(app, fields, error, code, param):
    request = {"model": "qwen3-tts", "input": "Hello there.", "voice": "clip", "extra_body": clone_fields()} | fields
    with pytest.raises(error) as caught:
        await sdk(app).audio.speech.create(**request)
    assert (caught.value.code, caught.value.param) == (code, param)
    assert set(caught.value.body) == {"message", "type", "param", "code"} and caught.value.message
    assert caught.value.response.headers["x-should-retry"] == "false"  # the SDK would send it three times


@pytest.mark.slow
@pytest.mark.parametrize("stream_format", [None, "audio"])
@pytest.mark.parametrize(
    ("overrides", "code"),
    [({"ref_audio": base64.b64encode(b"RIFF but not audio").decode()}, "not_audio"),
     ({"ref_audio": base64.b64encode(sine_clip(seconds=0.3)).decode()}, "audio_too_short"),
     ({"ref_audio": base64.b64encode(sine_clip(amplitude=0.0)).decode()}, "silent_audio"),
     ({"language": "Klingon"}, "unknown_language")],
)
async def test_what_the_engine_refuses_is_a_400_streamed_or_not(client, overrides, code, stream_format):
    """The engine's own checks (the clip by content, the language) answer before any audio, streaming too."""
    with pytest.raises(openai.BadRequestError) as caught:
        await client.audio.speech.create(model="qwen3-tts", input="Hello there.", voice="clip", response_format="wav",
                                         extra_body=clone_fields(**overrides) | (
                                             {"stream_format": stream_format} if stream_format else {}))
    assert caught.value.code == code and caught.value.type == "invalid_request_error"


@pytest.mark.parametrize("token", [None, "wrong-token-0123456789", f"{TOKEN}x"])
async def test_a_missing_or_wrong_token_is_an_authentication_error(token):
    app = create_web_app(NeverCalled(), token=TOKEN)
    if token is None:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://tts") as raw:
            response = await raw.post("/v1/audio/speech", json={"model": "qwen3-tts", "input": "Hi", "voice": "x"})
        assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
        return
    for call in (sdk(app, token).audio.speech.create(model="qwen3-tts", input="Hi", voice="x"),
                 sdk(app, token).models.list(), voice_list(sdk(app, token))):
        with pytest.raises(openai.AuthenticationError) as caught:
            await call
        assert caught.value.code == "unauthorized" and TOKEN not in caught.value.message


@pytest.mark.parametrize("token", [None, "", "  "])
async def test_without_a_token_the_openai_routes_are_closed_too(token):
    app = create_web_app(NeverCalled(), token=token)
    for call in (sdk(app, "any-token-at-all-0123").audio.speech.create(model="qwen3-tts", input="Hi", voice="x"),
                 sdk(app, "any-token-at-all-0123").models.list()):
        with pytest.raises(openai.AuthenticationError):
            await call


@pytest.mark.parametrize("path", ["/v1/audio/speech", "/v1/audio/voices"])
async def test_the_token_is_checked_before_the_body_is_read(path):
    body = CountingBody(b"x" * (1024 * 1024), 400)
    response = await post(create_web_app(NeverCalled(), token=TOKEN), path, content=body,
                          headers={"Authorization": "Bearer wrong"})
    assert (response.status_code, response.json()["error"]["code"], body.sent) == (401, "unauthorized", 0)


SMALL = AudioLimits(max_bytes=3 * 1024)


class FilePart(CountingBody):
    """A multipart body whose one file part goes on and on."""

    async def __aiter__(self):
        yield b'--b\r\nContent-Disposition: form-data; name="audio_sample"; filename="a.wav"\r\n\r\n'
        async for chunk in super().__aiter__():
            yield chunk


@pytest.mark.parametrize("declared", [None, "200", "100000000"], ids=["chunked", "lying", "too-large"])
@pytest.mark.parametrize("path", ["/v1/audio/speech", "/v1/audio/voices"])
async def test_an_oversized_body_is_a_413_in_openais_shape(path, declared):
    app = create_web_app(NeverCalled(), token=TOKEN, audio_limits=SMALL, max_text_chars=10)
    body = CountingBody(b"x" * 1024, 64) if path.endswith("speech") else FilePart(b"x" * 1024, 64)
    kind = "application/json" if path.endswith("speech") else "multipart/form-data; boundary=b"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": kind} | (
        {"Content-Length": declared} if declared else {})
    response = await post(app, path, content=body, headers=headers)
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "body_too_large" and error["type"] == "invalid_request_error"
    assert body.sent <= (0 if declared == "100000000" else 40)


def test_the_largest_valid_speech_request_fits_its_body_limit():
    from backend.openai_api import body_limits

    limit = body_limits(AudioLimits(), 1000)["/v1/audio/speech"]
    clip = base64.b64encode(bytes(AudioLimits().max_bytes)).decode()
    largest = httpx2.Request("POST", "/", json={
        "model": "gpt-4o-mini-tts", "input": "😀" * 1000, "voice": {"id": "x" * 64}, "response_format": "flac",
        "ref_audio": f"data:audio/wav;base64,{clip}", "ref_text": "😀" * 1000, "language": "Portuguese",
        "seed": -(2**63), "max_new_tokens": 2048, "stream_format": "audio", "speed": 1.0, "task_type": "Base",
        "x_vector_only_mode": False, "stream": False})
    assert len(largest.read()) <= limit


class BrokenService:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def clone(self, request):
        raise self.error


@pytest.mark.parametrize(("error", "status"), [(RuntimeError("CUDA error: secret internals"), 500),
                                               (EngineConfigError("flash-attn is missing.", code="fa2"), 503)])
async def test_server_failures_are_internal_server_errors_without_internals(error, status):
    client = sdk(create_web_app(BrokenService(error), token=TOKEN))
    with pytest.raises(openai.InternalServerError) as caught:
        await client.audio.speech.create(model="qwen3-tts", input="Hi.", voice="x", extra_body=clone_fields())
    assert caught.value.status_code == status and caught.value.type == "server_error"
    assert "secret" not in caught.value.response.text and len(caught.value.message) <= MAX_MESSAGE_CHARS


async def test_models_lists_the_names_model_accepts():
    client = sdk(create_web_app(NeverCalled(), token=TOKEN, speech_models=("qwen3-tts", "custom")))
    assert [model.id async for model in client.models.list()] == ["qwen3-tts", "custom"]
    with pytest.raises(openai.NotFoundError) as caught:
        await client.get("/audio/translations", cast_to=object)
    assert caught.value.code == "not_found" and caught.value.type == "not_found_error"
