"""Streaming, where a test can see when each chunk leaves: the ASGI app driven directly with a service whose
engine streams (`clone_stream`), so the first chunk must reach the client before the second is generated; a
client leaving, an encoder failing and a generation failing mid-stream each end everything they started."""

from __future__ import annotations

import asyncio
import base64
import json
import threading

import numpy as np
import pytest

from backend.errors import BackendFailed
from backend.openai_api.encoding import AudioFormat
from backend.web import create_web_app
from tests.backend.openai_client import CLIP, TOKEN, measured


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
