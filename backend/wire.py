"""How `backend.schema`'s requests, results and errors are encoded on each transport.

The HTTP API speaks the deployment plan's JSON (audio as standard base64 under `ref_audio_base64` /
`audio_base64`); Modal methods return plain dicts wrapped in a reply envelope, so a domain error such as
`InvalidInput` reaches the client with its code instead of as a pickled exception. Server and client import
the same functions from here, and nothing here needs FastAPI or torch.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from backend.errors import BackendFailed, EngineConfigError, InvalidInput, VoicebotError
from backend.schema import CloneRequest, CloneResult

MAX_BATCH_ITEMS = 16  # one batch holds the model lock for all its items: keep a single request bounded


class CloneBody(BaseModel):
    """`POST /clone` body: one text and one reference clip."""

    text: str
    language: str = "Auto"
    ref_audio_base64: str
    ref_text: str | None = None
    seed: int | None = None
    max_new_tokens: int | None = Field(default=None, ge=1)

    @classmethod
    def from_request(cls, request: CloneRequest) -> CloneBody:
        return cls(
            text=request.text, language=request.language, ref_text=request.ref_text, seed=request.seed,
            max_new_tokens=request.max_new_tokens,
            ref_audio_base64=base64.b64encode(request.reference).decode("ascii"),
        )

    def to_request(self) -> CloneRequest:
        """Decode the clip; malformed base64 is the caller's mistake, so it is `InvalidInput`."""
        try:
            reference = base64.b64decode(self.ref_audio_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput("ref_audio_base64 is not valid base64.", code="bad_base64") from exc
        return CloneRequest(
            reference=reference, text=self.text, language=self.language, ref_text=self.ref_text,
            seed=self.seed, max_new_tokens=self.max_new_tokens,
        )


class CloneBatchBody(BaseModel):
    """`POST /clone-batch` body."""

    items: list[CloneBody] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


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
