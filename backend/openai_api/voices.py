"""`/v1/audio/voices`: the saved voices a caller may use, saving one and deleting one.

The upload is OpenAI's (`client.audio.voices.create`) and vllm-omni's multipart form: `name`, `audio_sample`
(the clip), `consent`, and optionally `ref_text` (the clip's transcript, which enables in-context cloning).
Consent is required and specific: `consent` must be `CONSENT_ID`, confirming `CONSENT_STATEMENT`; the record
kept with the voice holds that statement verbatim with its version, who confirmed it and when. The clip goes
through the same intake as every reference clip (sniffed and judged by its content, decoded within a fixed
budget, refused when silent), and the checked, normalised WAV is what is saved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from backend.errors import InvalidInput
from backend.intake import read_reference
from backend.intake.limits import AudioLimits
from backend.openai_api.errors import InvalidParam
from backend.openai_api.speech import SpeechSource
from backend.validation import check_text, shown
from backend.voice_catalog import CONSENT_ID, CONSENT_STATEMENT, CONSENT_VERSION, Caller, Consent, SavedVoice, VoiceCatalog

T = TypeVar("T")
R = TypeVar("R")
CONSENT_MESSAGE = f'Saving a voice needs consent: send consent="{CONSENT_ID}" to confirm: “{CONSENT_STATEMENT}”'


async def save_voice(voices: VoiceCatalog | None, caller: Caller, *, name: str, consent: str, clip: bytes,
                     filename: str | None, ref_text: str | None, voice_type: str | None,
                     audio_limits: AudioLimits, max_text_chars: int) -> SavedVoice:
    """Check the form (cheapest first), then the clip, then store it with its consent record."""
    if voices is None:
        raise InvalidInput("This server does not save voices; send the clip with each request as ref_audio.",
                           code="uploads_closed")
    if voice_type not in (None, "audio_sample"):
        raise InvalidParam(f"The voice type {shown(voice_type)} is not supported; voices are made from an "
                           "audio_sample.", param="type", code="unsupported_voice_type")
    if consent.strip() != CONSENT_ID:
        raise InvalidParam(CONSENT_MESSAGE, param="consent", code="consent_required")
    _checked("name", voices.check_name, name)
    transcript = _checked("ref_text", lambda text: check_text(text, max_text_chars, field="transcript"),
                          ref_text) if ref_text is not None and ref_text.strip() else None
    checked = await asyncio.to_thread(
        _checked, "audio_sample", lambda data: read_reference(data, audio_limits, filename), clip)
    record = Consent(statement_id=CONSENT_ID, version=CONSENT_VERSION, statement=CONSENT_STATEMENT,
                     confirmed_by=caller.display_name, confirmed_at=datetime.now(UTC))
    return await voices.add(caller, name, checked.wav, transcript, record)


async def delete_saved_voice(source: SpeechSource, voices: VoiceCatalog | None, caller: Caller,
                             name: str) -> SavedVoice:
    """Delete a saved voice and drop the voice prompt this process cached from its clip (other containers drop
    theirs when they scale down); `voice_not_found` when there is none."""
    deleted = await voices.delete(caller, name) if voices is not None else None
    if deleted is None:
        raise InvalidParam(f"There is no saved voice called {shown(name)}.", param="voice_id", code="voice_not_found")
    await source.forget_voices([deleted.clip_sha256])
    return deleted


def _checked(param: str, check: Callable[[T], R], value: T) -> R:
    """`check(value)`, its `InvalidInput` naming the form field."""
    try:
        return check(value)
    except InvalidInput as exc:
        raise InvalidParam(exc.message, param=param, code=exc.code) from None
