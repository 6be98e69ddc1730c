"""How `backend.schema`'s requests, results and errors are encoded on each transport.

The HTTP API speaks the deployment plan's JSON (audio as standard base64 under `ref_audio_base64` /
`audio_base64`); Modal methods return plain dicts wrapped in a reply envelope, so a domain error such as
`InvalidInput` reaches the client with its code instead of as a pickled exception. Server and client import
the same functions from here, and nothing here needs FastAPI or torch.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator

from backend.errors import BackendFailed, EngineConfigError, InvalidInput, VoicebotError
from backend.intake.limits import AudioLimits
from backend.schema import (
    FRAME_SECONDS,
    MAX_FORGET_ITEMS,
    SAMPLE_RATE,
    CloneRequest,
    CloneResult,
    ForgetVoices,
    Progress,
    Seed,
)
from backend.validation import DEFAULT_MAX_TEXT_CHARS

MAX_BATCH_ITEMS = 16  # one batch holds the model lock for all its items: keep a single request bounded
MAX_MESSAGE_CHARS = 500  # an error message is cut here, whatever value it quotes
# JSON may escape each character of a text as a surrogate pair (`\ud83d\ude00`, 12 bytes); the rest of a body
# (language, seed, field names) fits in the margin.
_JSON_BYTES_PER_CHAR = 12
_BODY_MARGIN = 4096
T = TypeVar("T")


def _decode_base64(value: str, field: str) -> bytes:
    """Malformed base64 is the caller's mistake, so it is `InvalidInput`."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{field} is not valid base64.", code="bad_base64") from exc


class CloneBody(BaseModel):
    """`POST /clone` body: one text and one reference clip."""

    text: str
    language: str = "Auto"
    ref_audio_base64: str
    ref_text: str | None = None
    seed: Seed | None = None
    max_new_tokens: int | None = Field(default=None, ge=1)

    @classmethod
    def from_request(cls, request: CloneRequest) -> CloneBody:
        return cls(
            text=request.text, language=request.language, ref_text=request.ref_text, seed=request.seed,
            max_new_tokens=request.max_new_tokens,
            ref_audio_base64=base64.b64encode(request.reference).decode("ascii"),
        )

    def to_request(self) -> CloneRequest:
        return CloneRequest(
            reference=_decode_base64(self.ref_audio_base64, "ref_audio_base64"), text=self.text,
            language=self.language, ref_text=self.ref_text, seed=self.seed, max_new_tokens=self.max_new_tokens,
        )


class CloneBatchBody(BaseModel):
    """`POST /clone-batch` body."""

    items: list[CloneBody] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class CheckBody(BaseModel):
    """`POST /check` body: a clip to check for the watermark."""

    audio_base64: str

    @classmethod
    def from_audio(cls, audio: bytes) -> CheckBody:
        return cls(audio_base64=base64.b64encode(audio).decode("ascii"))

    def to_audio(self) -> bytes:
        return _decode_base64(self.audio_base64, "audio_base64")


def check_body_limit(limits: AudioLimits) -> int:
    """The largest `POST /check` body: a clip at the check's size limit as base64, and a margin."""
    return 4 * math.ceil(limits.max_bytes / 3) + _BODY_MARGIN


# `POST /forget-voices`: `{"clip_sha256s": [...]}`, each digest 64 characters however JSON escapes them
# (`\u0061`, 6 bytes each), quoted, with a comma.
FORGET_BODY_LIMIT = MAX_FORGET_ITEMS * (64 * 6 + 3) + _BODY_MARGIN


def clone_body_limit(limits: AudioLimits, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS) -> int:
    """The largest `POST /clone` body a valid request can need, in bytes: the clip at its size limit as base64
    (4 bytes per 3), the text and the transcript at their limit however JSON escapes them, and a margin."""
    return 4 * math.ceil(limits.max_bytes / 3) + 2 * max_text_chars * _JSON_BYTES_PER_CHAR + _BODY_MARGIN


def batch_body_limit(limits: AudioLimits, max_text_chars: int = DEFAULT_MAX_TEXT_CHARS) -> int:
    """The largest `POST /clone-batch` body: `MAX_BATCH_ITEMS` items of the largest `/clone` body."""
    return MAX_BATCH_ITEMS * (clone_body_limit(limits, max_text_chars) + 1) + _BODY_MARGIN


# -- requests from a call (the Modal methods take plain data) ----------------------------------------------
_BATCH = TypeAdapter(Annotated[list[CloneRequest], Field(min_length=1, max_length=MAX_BATCH_ITEMS)])


def invalid_request(locations: Iterable[Sequence[str | int]]) -> InvalidInput:
    """One message for a malformed request on every transport: the fields at fault, dotted (`items.3.seed`),
    never the values sent (they may be a user's text, a clip or a megabyte of garbage)."""
    fields = sorted({".".join(str(part) for part in location) or "body" for location in locations})
    return InvalidInput(f"Invalid or missing fields: {', '.join(fields)}.", code="invalid_request")


def request_from_call(data: Any) -> CloneRequest:
    """A Modal method's request dict as a `CloneRequest`; anything malformed is `InvalidInput` (422)."""
    try:
        return CloneRequest.model_validate(data)
    except ValidationError as exc:
        raise invalid_request(error["loc"] for error in exc.errors()) from None


def batch_from_call(data: Any) -> list[CloneRequest]:
    """A Modal method's list of request dicts, 1 to `MAX_BATCH_ITEMS` of them; field errors name the item."""
    try:
        return _BATCH.validate_python(data)
    except ValidationError as exc:
        raise invalid_request(("items", *error["loc"]) for error in exc.errors()) from None


def forget_from_call(data: Any) -> list[str]:
    """A `forget_voices` call's digests (a Modal method's list, or a client's), validated: lowercase SHA-256
    hex, at most `MAX_FORGET_ITEMS`; anything else is `InvalidInput` naming the items at fault."""
    try:
        return ForgetVoices.model_validate({"clip_sha256s": data}).clip_sha256s
    except ValidationError as exc:
        raise invalid_request(error["loc"] for error in exc.errors()) from None


def forget_batches(clip_sha256s: Sequence[str]) -> list[list[str]]:
    """Digests as validated calls of at most `MAX_FORGET_ITEMS` each, so a client can send any number."""
    return [forget_from_call(list(clip_sha256s[start:start + MAX_FORGET_ITEMS]))
            for start in range(0, len(clip_sha256s), MAX_FORGET_ITEMS)]


@contextmanager
def naming_item(index: int) -> Iterator[None]:
    """An `InvalidInput` raised for one item of a batch says which (`items.3: Unknown language ...`)."""
    try:
        yield
    except InvalidInput as exc:
        raise InvalidInput(f"items.{index}: {exc.message}", code=exc.code, detail=exc.detail) from exc


def checked_batch(items: Sequence[T], to_request: Callable[[T], CloneRequest],
                  validate: Callable[[CloneRequest], object]) -> list[CloneRequest]:
    """Every item of a batch as a validated request, before any of them reaches the model: the first bad one
    is refused by its index, and a batch never fails halfway through a generation."""
    requests = []
    for index, item in enumerate(items):
        with naming_item(index):
            request = to_request(item)
            validate(request)
        requests.append(request)
    return requests


def result_to_json(result: CloneResult) -> dict[str, Any]:
    """A result as JSON-ready data, the WAV under `audio_base64` (standard alphabet, as the plan's clients use)."""
    return result.model_dump(mode="json", exclude={"audio"}) | {
        "audio_base64": base64.b64encode(result.audio).decode("ascii")
    }


def result_from_json(data: dict[str, Any]) -> CloneResult:
    fields = {key: value for key, value in data.items() if key != "audio_base64"}
    return CloneResult.model_validate(fields | {"audio": base64.b64decode(data["audio_base64"])})


# -- errors ----------------------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    """What every failed call answers: the stable code and the user-facing message."""

    error: str
    message: str

    @field_validator("message")
    @classmethod
    def _bounded(cls, message: str) -> str:
        return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


def http_status(exc: VoicebotError) -> int:
    """422 for bad input (retrying will not help), 503 when the server cannot serve its configuration."""
    if isinstance(exc, InvalidInput):
        return 422
    if isinstance(exc, EngineConfigError):
        return 503
    return 500


def error_body(exc: VoicebotError) -> dict[str, str]:
    return ErrorBody(error=exc.code, message=exc.message).model_dump()


def error_from_body(status: int, body: Any) -> VoicebotError:
    """Rebuild a server's error: 422 stays `InvalidInput` with its code; anything else is `BackendFailed`."""
    try:
        parsed: ErrorBody | None = ErrorBody.model_validate(body)
    except ValidationError:
        parsed = None
    if status == 422:
        if parsed is None:
            return InvalidInput("The backend rejected the request as invalid.")
        return InvalidInput(parsed.message, code=parsed.error)
    if parsed is None:
        return BackendFailed(f"The backend failed (HTTP {status}).")
    return BackendFailed(parsed.message, code=parsed.error)


# -- Modal replies ---------------------------------------------------------------------------------------
def reply_ok(payload: Any) -> dict[str, Any]:
    return {"result": payload}


def reply_error(exc: VoicebotError) -> dict[str, Any]:
    return {"status": http_status(exc), **error_body(exc)}


def unwrap_reply(reply: dict[str, Any]) -> Any:
    """The payload of a Modal method's reply, or the error it carries raised as the matching `VoicebotError`."""
    if "result" in reply:
        return reply["result"]
    raise error_from_body(int(reply.get("status", 500)), reply)


# -- progress streams: the HTTP API's NDJSON answer and the Modal generator method ---------------------------
NDJSON = "application/x-ndjson"
# A result line carries the WAV as base64; the engine caps a generation at 2048 frames by default (164 s of
# audio). Twice that bounds what a client accepts from any voicebot server, however it is configured; a
# longer line is not a voicebot answer, and a hostile server cannot make the client hold more.
MAX_RESULT_FRAMES = 4096
_WAV_HEADER_BYTES = 44
_SAMPLES_PER_FRAME = round(SAMPLE_RATE * FRAME_SECONDS)


def max_stream_line_bytes(max_frames: int = MAX_RESULT_FRAMES) -> int:
    """The longest line of a progress stream: the result line of a `max_frames` WAV (16-bit mono) as base64,
    plus its metadata. Progress and error lines are far shorter."""
    wav_bytes = _WAV_HEADER_BYTES + 2 * _SAMPLES_PER_FRAME * max_frames
    return 4 * math.ceil(wav_bytes / 3) + _BODY_MARGIN


def progress_event(progress: Progress) -> dict[str, Any]:
    return {"progress": progress.model_dump(mode="json")}


def error_event(exc: VoicebotError) -> dict[str, Any]:
    """The error shape every transport uses, with the HTTP status the plain answer would have had, so a client
    maps it the same way (`error_from_body`)."""
    return {"error": {"status": http_status(exc), **error_body(exc)}}


def stream_line(event: dict[str, Any]) -> bytes:
    """One event of the HTTP stream: compact JSON on one line (JSON escapes every newline inside strings)."""
    return json.dumps(event, separators=(",", ":")).encode() + b"\n"


def event_from_stream(data: Any, parse_result: Callable[[Any], T]) -> Progress | T:
    """One event of a progress stream as `Progress` or the parsed result; an error event is raised as the
    matching `VoicebotError`. Anything else (another shape, extra keys) raises `ValueError`."""
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError("a stream event is an object with one key")
    (kind, payload), = data.items()
    if kind == "progress":
        return Progress.model_validate(payload)
    if kind == "result":
        return parse_result(payload)
    if kind == "error" and isinstance(payload, dict):
        raise error_from_body(int(payload.get("status", 500)), payload)
    raise ValueError(f"unknown stream event {kind!r:.40}")


# -- audio streams: the HTTP API's `POST /clone-stream` (NDJSON) and the Modal generator `stream_audio` ------
# Speech goes out as it is generated, in pieces of at most half a second of 16-bit PCM (24 kHz mono,
# little-endian): `{"audio": <pcm>}` (base64 in JSON, raw bytes over Modal) ... then `{"end": {}}`, or an error
# event. The end event tells a finished stream from a cut connection. A reader holds one piece at a time and
# refuses more audio in total than the longest generation a voicebot server makes (`MAX_RESULT_FRAMES`).
AUDIO_PIECE_SAMPLES = SAMPLE_RATE // 2
MAX_STREAM_SAMPLES = MAX_RESULT_FRAMES * _SAMPLES_PER_FRAME
MAX_AUDIO_LINE_BYTES = 4 * math.ceil(2 * AUDIO_PIECE_SAMPLES / 3) + _BODY_MARGIN
END_EVENT: dict[str, Any] = {"end": {}}


def pcm16_pieces(chunk: Any) -> Iterator[bytes]:
    """A float chunk as 16-bit PCM pieces of at most `AUDIO_PIECE_SAMPLES`, converted as the WAV of the same clip
    is (`backend.audio.to_pcm16`: clipped, so loud samples cannot wrap around)."""
    import numpy as np

    from backend.audio import to_pcm16

    samples = np.asarray(chunk, dtype=np.float32).reshape(-1)
    for start in range(0, len(samples), AUDIO_PIECE_SAMPLES):
        yield to_pcm16(samples[start:start + AUDIO_PIECE_SAMPLES])


def audio_event(pcm: bytes, *, as_text: bool) -> dict[str, Any]:
    return {"audio": base64.b64encode(pcm).decode("ascii") if as_text else pcm}


class AudioStreamReader:
    """Reads one audio stream's events: `read` gives each piece as float32 samples, None at the end event;
    an error event is raised as its `VoicebotError`; anything else (another shape, a bad piece, more audio
    than any generation makes) raises `ValueError`."""

    def __init__(self, *, as_text: bool, max_samples: int = MAX_STREAM_SAMPLES) -> None:
        self._as_text = as_text
        self._left = max_samples
        self.ended = False

    def read(self, data: Any) -> Any:
        from backend.audio import from_pcm16

        if not isinstance(data, dict) or len(data) != 1:
            raise ValueError("a stream event is an object with one key")
        (kind, payload), = data.items()
        if kind == "end" and not self.ended:
            self.ended = True
            return None
        if kind == "error" and isinstance(payload, dict):
            raise error_from_body(int(payload.get("status", 500)), payload)
        if kind != "audio" or self.ended:
            raise ValueError(f"unexpected stream event {kind!r:.40}")
        if self._as_text:
            if not isinstance(payload, str) or len(payload) > MAX_AUDIO_LINE_BYTES:
                raise ValueError("an audio piece is base64 text of at most half a second")
            payload = base64.b64decode(payload, validate=True)
        if not isinstance(payload, bytes) or len(payload) % 2 or len(payload) > 2 * AUDIO_PIECE_SAMPLES:
            raise ValueError("an audio piece is 16-bit PCM of at most half a second")
        samples = len(payload) // 2
        if samples > self._left:
            raise ValueError("more audio than any generation makes")
        self._left -= samples
        return from_pcm16(payload)
