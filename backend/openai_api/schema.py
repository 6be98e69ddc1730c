"""The request and response bodies of the OpenAI-compatible API.

`SpeechBody` is OpenAI's `POST /v1/audio/speech` body plus vllm-omni's fields for voice cloning with
Qwen3-TTS Base (`ref_audio`, `ref_text`, `language`, `x_vector_only_mode`, `task_type`, `seed`,
`max_new_tokens`, `stream`), so a client written for either server works here. Unknown fields are refused by
name rather than ignored: a misspelt `ref_audio` must not silently speak in some other voice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.schema import Seed
from backend.voice_catalog import SavedVoice

# Served model names: ours, and OpenAI's, so a tool configured for OpenAI's models works unchanged.
DEFAULT_MODELS = ("qwen3-tts", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")
_SHORT = 200  # names, formats, languages: anything longer is not one


class SpeechBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(max_length=_SHORT)
    input: str
    voice: str = Field(max_length=_SHORT)
    response_format: str = Field(default="mp3", max_length=_SHORT)
    speed: float = 1.0
    stream_format: str | None = Field(default=None, max_length=_SHORT)
    instructions: str | None = None
    # vllm-omni's cloning fields
    ref_audio: str | None = None
    ref_text: str | None = None
    language: str | None = Field(default=None, max_length=_SHORT)
    x_vector_only_mode: bool | None = None
    task_type: str | None = Field(default=None, max_length=_SHORT)
    seed: Seed | None = None
    max_new_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False

    @field_validator("voice", mode="before")
    @classmethod
    def _voice_id(cls, voice: Any) -> Any:
        """OpenAI's custom-voice form `{"id": "..."}` is the same name as the plain string."""
        if isinstance(voice, dict) and set(voice) == {"id"}:
            return voice["id"]
        return voice


def voice_json(voice: SavedVoice) -> dict[str, Any]:
    """A saved voice as OpenAI's `Voice` object (what `client.audio.voices.create` returns)."""
    return {"id": voice.id, "object": "audio.voice", "name": voice.name, "type": "audio_sample",
            "created_at": _unix(voice.created_at)}


def voice_list_json(voices: list[SavedVoice]) -> dict[str, Any]:
    """`GET /v1/audio/voices`: OpenAI's list shape (`data`), and the names under `voices` as vllm-omni and other
    TTS servers list them (what chat front-ends read)."""
    return {"object": "list", "data": [voice_json(voice) for voice in voices],
            "voices": [voice.id for voice in voices]}


def model_list_json(models: tuple[str, ...]) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": "voicebot"}
                                       for model in models]}


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())
