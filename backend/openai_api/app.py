"""The OpenAI-compatible audio API, mounted under `/v1` of a web app that guards it (`backend.web.guard`: the
caller authenticated before any body is read, the declared-size guard): the backend's own web app, on the
same clone service (the engine, or on Modal the container's batcher in front of it), or `voicebot serve-api`,
on the bots' job queue and voice library (`bot.api_server`).

    POST /v1/audio/speech   text -> audio in the voice of a saved voice or of the clip sent (`speech`)
    GET  /v1/audio/voices   the saved voices the caller may use (`voices`)
    POST /v1/audio/voices   save a voice, with consent
    DELETE /v1/audio/voices/{id}  delete one (its cached voice prompt in this process too)
    GET  /v1/models         the model names `model` accepts

A FastAPI app of its own rather than routes of the parent: its error handlers answer in OpenAI's shape
(`errors`) while the parent's keep the native one. Handlers are `async` and hand every blocking call (the
intake) to a worker thread, and the source and the catalog are async, so a generation never blocks the event
loop.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence

import anyio
import structlog
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from starlette.authentication import SimpleUser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.intake.limits import AudioLimits
from backend.openai_api.encoding import MEDIA_TYPES
from backend.openai_api.errors import install_error_handlers
from backend.openai_api.schema import DEFAULT_MODELS, SpeechBody, model_list_json, voice_json, voice_list_json
from backend.openai_api.speech import SpeechSource, speech_job, streamed_answer, whole_answer
from backend.openai_api.voices import delete_saved_voice, save_voice
from backend.validation import DEFAULT_MAX_TEXT_CHARS
from backend.voice_catalog import Caller, VoiceCatalog
from backend.wire import clone_body_limit

log = structlog.get_logger(__name__)
PREFIX = "/v1"
OPEN_ACCESS = SimpleUser("open-access")  # who saved a voice on an endpoint opened on purpose (no token)
_FORM_MARGIN = 16 * 1024  # multipart boundaries and part headers, the name, the consent


def body_limits(audio_limits: AudioLimits, max_text_chars: int) -> dict[str, int]:
    """The largest valid body per path, for the parent's declared-size guard and the routes' own limits:
    a speech request holds what a `/clone` body holds; an upload a clip, a transcript (4 bytes per character
    at most in UTF-8) and the form's overhead."""
    return {f"{PREFIX}/audio/speech": clone_body_limit(audio_limits, max_text_chars),
            f"{PREFIX}/audio/voices": audio_limits.max_bytes + 4 * max_text_chars + _FORM_MARGIN}


def caller_of(request: Request) -> Caller:
    """Who is asking, as the parent's authentication recorded it (on the backend's app a fingerprint of the
    token, never the token; in `serve-api` the member an API key belongs to)."""
    user = request.scope.get("user")
    return user if user is not None and user.is_authenticated else OPEN_ACCESS


def create_openai_app(source: SpeechSource, *, voices: VoiceCatalog | None = None,
                      models: Sequence[str] = DEFAULT_MODELS, audio_limits: AudioLimits | None = None,
                      max_text_chars: int = DEFAULT_MAX_TEXT_CHARS, statuses: Mapping[str, int] | None = None
                      ) -> ASGIApp:
    """The app to mount at `PREFIX`, its audio from `source`. Without `voices`, requests send their clip
    (`ref_audio`), the voice list is empty and uploads are refused. `statuses` maps the codes of the source's
    and the catalog's own errors to HTTP statuses (a limit is 429, a block 403)."""
    limits = audio_limits or AudioLimits()
    served = tuple(models)
    sizes = body_limits(limits, max_text_chars)
    app = FastAPI(title="voicebot OpenAI-compatible audio", docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app, statuses or {})

    @app.post("/audio/speech", max_body_size=sizes[f"{PREFIX}/audio/speech"])
    async def speech(body: SpeechBody, request: Request) -> Response:
        started = time.perf_counter()
        caller = caller_of(request)
        job = await speech_job(body, caller=caller, models=served, voices=voices, audio_limits=limits,
                               max_text_chars=max_text_chars)
        media_type = MEDIA_TYPES[job.audio_format]
        if job.stream:
            chunks = await streamed_answer(source, job, caller)
            log.info("openai_api.speech", format=str(job.audio_format), stream=True,
                     first_chunk_s=round(time.perf_counter() - started, 3))
            return _ClosingStreamingResponse(_logged(chunks), media_type=media_type)
        audio = await whole_answer(source, job, caller)
        log.info("openai_api.speech", format=str(job.audio_format), stream=False, bytes=len(audio),
                 seconds=round(time.perf_counter() - started, 3))
        return Response(audio, media_type=media_type)

    @app.get("/audio/voices")
    async def list_voices(request: Request) -> dict:
        saved = await voices.list(caller_of(request)) if voices is not None else []
        return voice_list_json(saved)

    @app.post("/audio/voices", max_body_size=sizes[f"{PREFIX}/audio/voices"])
    async def upload_voice(request: Request, name: str = Form(),
                           consent: str = Form(default=""),  # missing: the consent message, not a generic one
                           audio_sample: UploadFile = File(), ref_text: str | None = Form(default=None),
                           type: str | None = Form(default=None)) -> dict:  # noqa: A002 - the form field's name
        clip = await audio_sample.read(limits.max_bytes + 1)  # one byte over is enough to refuse it by size
        voice = await save_voice(voices, caller_of(request), name=name, consent=consent, clip=clip,
                                 filename=audio_sample.filename, ref_text=ref_text, voice_type=type,
                                 audio_limits=limits, max_text_chars=max_text_chars)
        return voice_json(voice)

    @app.delete("/audio/voices/{voice_id}")
    async def delete_voice(voice_id: str, request: Request) -> dict:
        deleted = await delete_saved_voice(source, voices, caller_of(request), voice_id)
        return {"id": deleted.id, "object": "audio.voice.deleted", "deleted": True}

    @app.get("/models")
    async def list_models() -> dict:
        return model_list_json(served)

    return _Contained(app)


class _Contained:
    """The mounted app answers its own failures (in OpenAI's shape, logged with the traceback), but Starlette
    re-raises every exception after answering it, and the parent app would handle it again: log it twice and try
    to answer a second time. So a failure stops here once answered. One that came after the answer started (a
    stream cut short) is passed on, so the server aborts the connection and the client sees the body end early."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = finished = False

        async def watched(message: Message) -> None:
            nonlocal started, finished
            started = started or message["type"] == "http.response.start"
            finished = finished or (message["type"] == "http.response.body" and not message.get("more_body"))
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if scope["type"] != "http" or (started and not finished):
                raise


class _ClosingStreamingResponse(StreamingResponse):
    """A streamed answer whose chunks are closed when it ends, however it ends. Starlette stops iterating when
    the client goes away but leaves the generator open: its encoder process and the engine's stream would run
    on until garbage collection, maybe after the event loop that owns them is gone."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[union-attr]


async def _logged(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A streamed answer, its size logged when it is complete (a failure is logged by the error handler)."""
    sent = 0
    try:
        async for chunk in chunks:
            sent += len(chunk)
            yield chunk
    finally:
        await chunks.aclose()  # type: ignore[attr-defined]
    log.info("openai_api.streamed", bytes=sent)
