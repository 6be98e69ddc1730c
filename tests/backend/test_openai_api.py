"""The OpenAI-compatible API (`backend.openai_api`, mounted at /v1 of `backend.web`) through the official
`openai` client, pointed at the app by an httpx2 ASGI transport: speech in every format on the tiny checkpoint
(decoded and measured), streaming, saved voices, and every refusal with the status, exception class and
error shape the SDK expects. The edge (token before body, body limits) and the streaming source are checked at
the ASGI level, where a test can see when each chunk leaves."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import threading

import httpx2
import numpy as np
import openai
import pytest
import soundfile as sf

from backend.errors import BackendFailed, EngineConfigError
from backend.intake import load_audio
from backend.intake.limits import AudioLimits
from backend.openai_api.encoding import AudioFormat, encode_whole, wav_pcm16
from backend.watermark import detect, shared_watermarker
from backend.voice_catalog import CONSENT_ID, CONSENT_STATEMENT, DirectoryVoiceCatalog
from backend.web import create_web_app
from backend.wire import MAX_MESSAGE_CHARS
from tests.backend import speech_like
from tests.backend.test_web import CountingBody, NeverCalled
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


# -- saved voices ---------------------------------------------------------------------------------------------
async def voice_list(client: openai.AsyncOpenAI) -> dict:
    return await client.get("/audio/voices", cast_to=object)


@pytest.mark.slow
async def test_a_saved_voice_speaks_like_its_clip_and_keeps_its_consent(client, voices):
    created = await client.audio.voices.create(name="Tone", consent=CONSENT_ID,
                                               audio_sample=("tone.wav", CLIP, "audio/wav"),
                                               extra_body={"ref_text": TRANSCRIPT})
    assert (created.id, created.name, created.object, created.type) == ("tone", "Tone", "audio.voice", "audio_sample")
    listed = await voice_list(client)
    assert "tone" in listed["voices"] and listed["object"] == "list"
    assert {"id": "tone", "object": "audio.voice", "name": "Tone", "type": "audio_sample",
            "created_at": created.created_at} in listed["data"]
    by_name = await client.audio.speech.create(model="qwen3-tts", input="Hello there.", voice="TONE",
                                               response_format="wav", extra_body=FAST | {"language": "English"})
    by_id = await client.audio.speech.create(model="qwen3-tts", input="Hello there.", voice={"id": "tone"},
                                             response_format="wav", extra_body=FAST | {"language": "English"})
    assert by_name.content == by_id.content == await speak(client)  # the saved clip and transcript, same seed
    consent = voices.find("anyone", "tone").consent
    assert (consent.statement_id, consent.statement, consent.confirmed_by) == (CONSENT_ID, CONSENT_STATEMENT,
                                                                              IDENTITY)
    assert TOKEN not in json.dumps([str(value) for value in vars(consent).values()])


@pytest.mark.slow
async def test_a_deleted_voice_is_gone_with_its_cached_prompt(app, client):
    await client.audio.voices.create(name="fleeting", consent=CONSENT_ID, audio_sample=("f.wav", CLIP, "audio/wav"),
                                     extra_body={"ref_text": TRANSCRIPT})
    await client.audio.speech.create(model="qwen3-tts", input="Hi.", voice="fleeting", extra_body=FAST)
    deleted = await client.audio.voices.delete("FLEETING")
    assert (deleted.id, deleted.deleted, deleted.object) == ("fleeting", True, "audio.voice.deleted")
    assert "fleeting" not in (await voice_list(client))["voices"]
    for call in (client.audio.speech.create(model="qwen3-tts", input="Hi.", voice="fleeting", extra_body=FAST),
                 client.audio.voices.delete("fleeting")):
        with pytest.raises(openai.NotFoundError) as caught:
            await call
        assert caught.value.code == "voice_not_found"
    # The engine forgot the voice prompt made from the saved clip: the same clip is encoded afresh.
    native = await post(app, "/clone", headers={"Authorization": f"Bearer {TOKEN}"}, json={
        "text": "Hi.", "language": "English", "ref_audio_base64": base64.b64encode(CLIP).decode(),
        "ref_text": TRANSCRIPT, "max_new_tokens": 8})
    assert native.json()["voice_cached"] is False


@pytest.mark.parametrize(
    ("form", "error", "code", "param"),
    [
        ({"consent": "yes"}, openai.BadRequestError, "consent_required", "consent"),
        ({"consent": ""}, openai.BadRequestError, "consent_required", "consent"),
        ({"name": "../x"}, openai.BadRequestError, "invalid_voice_name", "name"),
        ({"audio_sample": ("notes.txt", b"hello " * 200, "audio/wav")}, openai.BadRequestError, "not_audio",
         "audio_sample"),
        ({"audio_sample": ("short.wav", sine_clip(seconds=0.3), "audio/wav")}, openai.BadRequestError,
         "audio_too_short", "audio_sample"),
        ({"audio_sample": ("quiet.wav", sine_clip(amplitude=0.0), "audio/wav")}, openai.BadRequestError,
         "silent_audio", "audio_sample"),
        ({"extra_body": {"ref_text": "x" * 2000}}, openai.BadRequestError, "text_too_long", "ref_text"),
        ({"type": "prompt", "extra_body": {}}, openai.BadRequestError, "unsupported_voice_type", "type"),
    ],
)
async def test_an_upload_is_refused_with_the_field_at_fault(app, voices, form, error, code, param):
    fields = {"name": "refused", "consent": CONSENT_ID, "audio_sample": ("voice.wav", CLIP, "audio/wav")} | form
    with pytest.raises(error) as caught:
        await sdk(app).audio.voices.create(**fields)
    assert (caught.value.code, caught.value.param, caught.value.type) == (code, param, "invalid_request_error")
    assert voices.find("anyone", "refused") is None
    if code == "consent_required":
        assert CONSENT_ID in caught.value.message and CONSENT_STATEMENT in caught.value.message


async def test_a_taken_name_is_a_conflict_that_is_not_retried(app):
    client = sdk(app)
    await client.audio.voices.create(name="twice", consent=CONSENT_ID, audio_sample=("a.wav", CLIP, "audio/wav"))
    with pytest.raises(openai.ConflictError) as caught:
        await client.audio.voices.create(name="TWICE", consent=CONSENT_ID, audio_sample=("a.wav", CLIP, "audio/wav"))
    assert caught.value.code == "voice_name_taken" and caught.value.response.headers["x-should-retry"] == "false"


async def test_without_a_catalog_voices_are_sent_with_each_request():
    client = sdk(create_web_app(NeverCalled(), token=TOKEN))
    assert (await voice_list(client))["data"] == []
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await client.audio.voices.create(name="x", consent=CONSENT_ID, audio_sample=("a.wav", CLIP, "audio/wav"))
    assert caught.value.code == "uploads_closed"


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


async def post(app, path: str, **kwargs) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://tts") as raw:
        return await raw.post(path, **kwargs)


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


# -- streaming as generated -------------------------------------------------------------------------------------
class GatedStream:
    """A streaming service whose second chunk waits until the first has left the server (or 5 s: then the test
    fails, the server having held the first chunk back)."""

    def __init__(self) -> None:
        self.first_sent = threading.Event()
        self.closed = threading.Event()

    def clone_stream(self, request):
        try:
            yield np.full(12_000, 0.1, dtype=np.float32)
            if not self.first_sent.wait(5):
                raise AssertionError("the first chunk was held back until the second was generated")
            yield np.full(12_000, -0.1, dtype=np.float32)
            yield np.full(12_000, 0.2, dtype=np.float32)
        finally:
            self.closed.set()


async def asgi_post(app, path: str, body: dict, *, on_body, disconnect_after_body: bool = False,
                    messages: list[dict] | None = None) -> list[dict]:
    """Drive the ASGI app directly, calling `on_body` as each non-empty body chunk is sent: what a client on a
    real connection would see, chunk by chunk (the httpx transports buffer the whole answer)."""
    payload = json.dumps(body).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "server": ("tts", 80),
             "client": ("test", 1), "headers": [(b"authorization", f"Bearer {TOKEN}".encode()),
                                               (b"content-type", b"application/json"),
                                               (b"content-length", str(len(payload)).encode())]}
    messages = [] if messages is None else messages
    requested, got_body = False, asyncio.Event()

    async def receive() -> dict:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": payload, "more_body": False}
        if disconnect_after_body:
            await got_body.wait()
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        messages.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            on_body()
            got_body.set()

    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    return messages


@pytest.mark.parametrize("audio_format", list(AudioFormat))
async def test_a_streaming_engine_is_streamed_as_it_generates(audio_format):
    service = GatedStream()
    app = create_web_app(service, token=TOKEN)
    body = {"model": "qwen3-tts", "input": "Hi.", "voice": "clip", "response_format": audio_format.value,
            "stream_format": "audio", "ref_audio": base64.b64encode(CLIP).decode()}
    messages = await asgi_post(app, "/v1/audio/speech", body, on_body=service.first_sent.set)
    assert messages[0]["status"] == 200
    audio = b"".join(message.get("body", b"") for message in messages[1:])
    seconds, rate = measured(audio_format.value, audio)
    assert rate == 24_000 and seconds == pytest.approx(1.5, abs=0.1)
    assert service.closed.is_set()


@pytest.mark.parametrize("audio_format", ["pcm", "mp3"])
async def test_a_client_that_leaves_stops_the_generation(audio_format):
    service = GatedStream()
    body = {"model": "qwen3-tts", "input": "Hi.", "voice": "clip", "response_format": audio_format,
            "stream_format": "audio", "ref_audio": base64.b64encode(CLIP).decode()}
    await asgi_post(create_web_app(service, token=TOKEN), "/v1/audio/speech", body, on_body=lambda: None,
                    disconnect_after_body=True)
    service.first_sent.set()  # the generator's next step: it must be closed there, not run on to the end
    assert service.closed.wait(5)


async def test_an_encoder_failure_is_a_clear_error_and_stops_the_source(monkeypatch):
    """ffmpeg exiting with an error (here: an encoder it does not have) is `encode_failed`, not a hang: the
    chunks still to come are not waited for."""
    from backend.openai_api import encoding

    monkeypatch.setitem(encoding._CODECS, AudioFormat.MP3, ("-c:a", "no-such-encoder", "-f", "mp3"))
    released = asyncio.Event()

    async def endless():
        yield b"\0\0" * 24_000
        await released.wait()  # never set: the encoder must give up without it
        yield b"\0\0"

    async def consume(chunks) -> bytes:
        return b"".join([chunk async for chunk in chunks])

    with pytest.raises(BackendFailed) as caught:
        await asyncio.wait_for(consume(encoding.encode(endless(), AudioFormat.MP3)), timeout=20)
    assert caught.value.code == "encode_failed" and "mp3" in caught.value.message


class FailingStream:
    def clone_stream(self, request):
        yield np.full(12_000, 0.1, dtype=np.float32)
        raise RuntimeError("CUDA error: secret internals")


@pytest.mark.parametrize("audio_format", ["pcm", "opus"])
async def test_a_generation_failing_mid_stream_cuts_the_answer_short(audio_format):
    """After the 200 and some audio, a failure can only end the body early: the server is told (the exception
    reaches it, so it aborts the connection) and the body never gets its final chunk."""
    body = {"model": "qwen3-tts", "input": "Hi.", "voice": "clip", "response_format": audio_format,
            "stream_format": "audio", "ref_audio": base64.b64encode(CLIP).decode()}
    messages: list[dict] = []
    with pytest.raises(RuntimeError, match="CUDA error"):
        await asgi_post(create_web_app(FailingStream(), token=TOKEN), "/v1/audio/speech", body,
                        on_body=lambda: None, messages=messages)
    assert messages[0]["status"] == 200
    assert all(message.get("more_body") for message in messages[1:])
