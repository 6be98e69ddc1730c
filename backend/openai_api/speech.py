"""`POST /v1/audio/speech` from body to audio: which clip and text the engine gets, and where the audio comes
from.

The request becomes the same `CloneRequest` the rest of the API sends, so the engine's checks (text, clip by
content, language), its batching and its watermark apply unchanged. The OpenAI fields this engine cannot
honour are refused with a 400 naming the field, never ignored: `speed` other than 1.0, `instructions`,
`stream_format: "sse"`, a `response_format` outside wav/mp3/opus/flac/pcm.

Where the audio comes from is a `SpeechSource`, told who asks: on the backend's web app the clone service in
worker threads (`ThreadedSource`); in `voicebot serve-api` the bots' job queue, which admits, limits and audits
each request first (`commands.api_speech`).
- a plain request waits for the whole clip (`SpeechSource.clone`: the engine's, or the container's batches);
- `stream_format: "audio"` takes the source's PCM stream (`SpeechSource.pcm_stream`): the engine's
  `clone_stream` when the service has one (watermarked chunks as the engine decodes them:
  `StreamingCloneService`), each chunk encoded and sent as it arrives. A service without it (the engine on
  main) generates the whole clip first, then the encoder's output is sent in chunks as ffmpeg writes it: the
  transfer is chunked, but the first byte waits for the generation.
Either way the first chunk is awaited before the response starts, so a request that fails (bad clip, unknown
language, a limit) still gets its 4xx in OpenAI's shape rather than a broken stream.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from backend.errors import InvalidInput
from backend.intake.limits import AudioLimits
from backend.audio import to_pcm16
from backend.openai_api.encoding import AudioFormat, encode, encode_whole, one_chunk, wav_pcm16
from backend.openai_api.errors import InvalidParam
from backend.openai_api.ref_audio import decode_ref_audio
from backend.openai_api.schema import SpeechBody
from backend.schema import CloneRequest, CloneResult
from backend.validation import check_text, shown
from backend.voice_catalog import Caller, SavedVoice, VoiceCatalog

FORMATS = ", ".join(audio_format.value for audio_format in AudioFormat)


class CloneService(Protocol):
    """The backend's blocking service (`backend.web.CloneService` has it all): the whole-clip path (the
    engine's `clone`, or the container's batcher in front of it) and its voice-prompt cache."""

    def clone(self, request: CloneRequest) -> CloneResult: ...

    def forget_voices(self, clip_sha256s: list[str]) -> int: ...


@runtime_checkable
class StreamingCloneService(Protocol):
    """A service that speaks a request as watermarked float32 chunks at 24 kHz while it generates (the engine's
    `clone_stream` on the fast path); closing the iterator early frees its place in the batch."""

    def clone_stream(self, request: CloneRequest) -> Iterator[np.ndarray]: ...


@dataclass(frozen=True)
class SpeechJob:
    """A checked speech request: what the engine gets, how the answer is sent, and the saved voice it speaks
    in (None when the clip came with the request)."""

    request: CloneRequest
    audio_format: AudioFormat
    stream: bool
    voice: SavedVoice | None = None


class SpeechSource(Protocol):
    """Where the API's audio comes from; errors are `VoicebotError`s, answered in OpenAI's shape."""

    async def clone(self, job: SpeechJob, caller: Caller) -> CloneResult:
        """The whole clip."""

    def pcm_stream(self, job: SpeechJob, caller: Caller) -> AsyncIterator[bytes]:
        """The speech as 16-bit PCM chunks (24 kHz mono) as they are generated; a refusal or failure raises from
        the first chunk at the latest. Closing it early stops the generation."""

    async def forget_voices(self, clip_sha256s: list[str]) -> int:
        """Drop cached voice prompts of deleted voices' clips; how many were dropped."""


async def speech_job(body: SpeechBody, *, caller: Caller, models: tuple[str, ...], voices: VoiceCatalog | None,
                     audio_limits: AudioLimits, max_text_chars: int) -> SpeechJob:
    """Check what only this API has (model, format, speed, streaming, the voice) and build the engine's request
    (a clip sent with it is decoded in a worker thread)."""
    if body.model not in models:
        raise InvalidParam(f"The model {shown(body.model)} does not exist here; use one of: {', '.join(models)}.",
                           param="model", code="model_not_found")
    try:
        audio_format = AudioFormat(body.response_format)
    except ValueError:
        raise InvalidParam(f"The response_format {shown(body.response_format)} is not supported; use one of: "
                           f"{FORMATS}.", param="response_format", code="unsupported_format") from None
    if body.speed != 1.0:
        raise InvalidParam(f"speed {body.speed:g} cannot be honoured: this engine speaks at its natural pace only. "
                           "Leave speed out or send 1.0.", param="speed", code="unsupported_speed")
    stream = _streams(body)
    if body.instructions and body.instructions.strip():
        raise InvalidParam("instructions are not supported: the voice is the reference clip's. Leave them out.",
                           param="instructions", code="unsupported_instructions")
    if body.task_type not in (None, "Base"):
        raise InvalidParam(f"The task_type {shown(body.task_type)} is not served here; this server clones voices "
                           "(Base).", param="task_type", code="unsupported_task_type")
    try:
        check_text(body.input, max_text_chars, field="input")  # the engine checks it again; here it names the param
    except InvalidInput as exc:
        raise InvalidParam(exc.message, param="input", code=exc.code) from None
    reference, ref_text, saved = await _voice(body, caller, voices, audio_limits)
    request = CloneRequest(reference=reference, text=body.input, ref_text=None if body.x_vector_only_mode else ref_text,
                           language=body.language or "Auto", seed=body.seed, max_new_tokens=body.max_new_tokens)
    return SpeechJob(request, audio_format, stream, saved)


def _streams(body: SpeechBody) -> bool:
    if body.stream_format not in (None, "audio"):
        raise InvalidParam(f"The stream_format {shown(body.stream_format)} is not supported; use \"audio\" (server-"
                           "sent events are not served).", param="stream_format", code="unsupported_stream_format")
    if body.stream and body.stream_format is None:  # vllm-omni: stream=true alone means server-sent events
        raise InvalidParam("stream=true asks for server-sent events, which are not served; send "
                           "stream_format \"audio\" instead.", param="stream", code="unsupported_stream_format")
    return body.stream_format == "audio"


async def _voice(body: SpeechBody, caller: Caller, voices: VoiceCatalog | None,
                 audio_limits: AudioLimits) -> tuple[bytes, str | None, SavedVoice | None]:
    """The reference clip, its transcript and the saved voice: `ref_audio` when sent (then `voice` is only a
    label, as the SDK requires one), else the saved voice `voice` names."""
    if body.ref_audio is not None:
        clip = await asyncio.to_thread(decode_ref_audio, body.ref_audio, audio_limits)
        return clip, body.ref_text, None
    saved = await voices.find(caller, body.voice) if voices is not None else None
    if saved is None:
        raise InvalidParam(f"There is no saved voice called {shown(body.voice)}. GET /v1/audio/voices lists "
                           "them; or send the clip itself as ref_audio.", param="voice", code="voice_not_found")
    if body.ref_text is not None:
        raise InvalidParam("ref_text goes with ref_audio; a saved voice has its own transcript.", param="ref_text",
                           code="ref_text_without_clip")
    assert voices is not None
    return await voices.clip(saved), saved.ref_text, saved


# -- the audio ------------------------------------------------------------------------------------------------
async def whole_answer(source: SpeechSource, job: SpeechJob, caller: Caller) -> bytes:
    """The whole clip in the asked format: the engine's WAV as is, or re-encoded from its samples."""
    result = await source.clone(job, caller)
    if job.audio_format is AudioFormat.WAV:
        return result.audio
    return await encode_whole(wav_pcm16(result.audio), job.audio_format)


async def streamed_answer(source: SpeechSource, job: SpeechJob, caller: Caller) -> AsyncIterator[bytes]:
    """The encoded chunks of a streamed answer, the first one already generated (so its errors are raised
    here, before any response is sent)."""
    pcm = source.pcm_stream(job, caller)
    try:
        first = await anext(pcm, b"")
    except BaseException:
        await pcm.aclose()  # type: ignore[attr-defined]
        raise
    return encode(_prepended(first, pcm), job.audio_format)


class ThreadedSource:
    """The backend's blocking clone service (the engine, or the container's batcher) as a `SpeechSource`: each
    call in a worker thread, so a generation never blocks the event loop. Everyone authenticated is served
    alike: the caller is not needed."""

    def __init__(self, service: CloneService) -> None:
        self.service = service

    async def clone(self, job: SpeechJob, caller: Caller) -> CloneResult:
        return await asyncio.to_thread(self.service.clone, job.request)

    async def pcm_stream(self, job: SpeechJob, caller: Caller) -> AsyncIterator[bytes]:
        service = self.service
        if isinstance(service, StreamingCloneService):
            pcm = _in_thread(lambda: service.clone_stream(job.request))
        else:
            result = await asyncio.to_thread(service.clone, job.request)
            pcm = one_chunk(wav_pcm16(result.audio))
        try:
            async for chunk in pcm:
                yield chunk
        finally:
            await pcm.aclose()  # type: ignore[attr-defined]

    async def forget_voices(self, clip_sha256s: list[str]) -> int:
        return await asyncio.to_thread(self.service.forget_voices, clip_sha256s)


async def _prepended(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()  # type: ignore[attr-defined]


async def _in_thread(open_stream: Callable[[], Iterator[np.ndarray]]) -> AsyncIterator[bytes]:
    """A blocking iterator of float chunks run on its own thread, its chunks handed to the event loop as PCM as
    they come. When the consumer stops (the client went away), the thread closes the iterator after the chunk in
    progress, so the engine stops generating for nobody."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stopped = threading.Event()

    def put(kind: str, value: Any) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

    def produce() -> None:
        try:
            stream = open_stream()
            try:
                for chunk in stream:
                    if stopped.is_set():
                        return
                    put("chunk", to_pcm16(chunk))
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
        except BaseException as exc:  # handed to the consumer, raised there
            put("error", exc)
            return
        put("end", None)

    threading.Thread(target=produce, name="speech-stream", daemon=True).start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stopped.set()
