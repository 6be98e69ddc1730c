"""Speech for the OpenAI-compatible API (`voicebot serve-api`): each request is one of the bots' jobs, on the
process's backend client, so the API is a gateway to the same engine and batching, never a second engine.

- A whole clip is a clone job (`CloneService.submit`, with the saved voice's stored clip or the clip sent in the
  request, its transcript unless `x_vector_only_mode`): the same admission (cooldown and jobs per user, shared
  with the bots through the database), queue, deadline, long-text splitting and result check as `/say` and
  `/clone`; a saved voice's use is counted as `/say` counts it.
- A stream (`stream_format: "audio"`) is `/speak`'s (`SpeechService.speak_as`): admitted the same way, the
  backend client's `clone_stream`, closed (slot freed, audit written) however the response ends.

Every generation is recorded in the audit trail of the member's workspace like `/say` (kind "say", or
"clone" for a clip sent with the request), its channel `api`, so admins see in `/voice activity` that it came
from the API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from backend.audio import to_pcm16
from backend.errors import VoicebotError
from backend.openai_api.errors import InvalidParam
from backend.openai_api.speech import SpeechJob
from backend.schema import CloneResult
from backend.voice_catalog import Caller
from commands.api_voices import LibraryVoice, member_of
from commands.clone import CloneService
from commands.speech import Speaker, SpeechService
from commands.storage.voices import Member, Voice
from commands.voice_library import VoiceLibrary

API_CHANNEL = "api"  # the audit trail's channel of every API generation
SENT_CLIP = "ref_audio.wav"


def place_of(member: Member) -> str:
    """Where an API job was asked (the job queue's `place`, in its logs): the member's workspace, via the API."""
    return f"api:{member.platform}:{member.workspace_id}"


def _voice(job: SpeechJob) -> Voice | None:
    return job.voice.record if isinstance(job.voice, LibraryVoice) else None


def _refuse_frame_limit(job: SpeechJob) -> None:
    """`max_new_tokens` caps one generation; the bots split long texts into several, so it has no meaning here
    and is refused rather than ignored."""
    if job.request.max_new_tokens is not None:
        raise InvalidParam("max_new_tokens is not served here: the length follows the text.",
                           param="max_new_tokens", code="unsupported_max_new_tokens")


class ApiSpeech:
    """`backend.openai_api.speech.SpeechSource` over the bots' services, for callers holding an API key."""

    def __init__(self, service: CloneService, library: VoiceLibrary) -> None:
        self.service = service
        self.library = library
        self.speech = SpeechService(service, library)

    async def clone(self, job: SpeechJob, caller: Caller) -> CloneResult:
        member = member_of(caller)
        _refuse_frame_limit(job)
        request, voice = job.request, _voice(job)
        submitted = await self.service.submit(member.key, place_of(member), request.reference,
                                              SENT_CLIP if voice is None else f"{voice.name}.wav", request.text,
                                              request.ref_text, request.language, seed=request.seed,
                                              remember_clip=False)
        if voice is not None:
            await self.library.record_say(submitted, member, API_CHANNEL, voice)
        else:
            self.library.record_clone(submitted, member, API_CHANNEL)
        try:
            await self.service.wait(submitted)
        except asyncio.CancelledError:  # the caller went away: nobody will take the audio
            submitted.mark_failed(VoicebotError("the API request was cancelled.", code="cancelled"))
            raise
        async with submitted.delivering() as result:  # the response carries it from here
            return result

    async def pcm_stream(self, job: SpeechJob, caller: Caller) -> AsyncIterator[bytes]:
        member = member_of(caller)
        _refuse_frame_limit(job)
        request, voice = job.request, _voice(job)
        speaker = Speaker(request.reference, request.ref_text, voice)
        speech = await self.speech.speak_as(member, speaker, request.text, request.language,
                                            channel_id=API_CHANNEL, kind="say" if voice else "clone",
                                            seed=request.seed)
        try:
            async for chunk in speech:
                yield to_pcm16(chunk)
        finally:
            await speech.close()

    async def forget_voices(self, clip_sha256s: list[str]) -> int:
        """Nothing left to do: the library's delete already dropped the clip's voice prompts from every backend
        variant, and only when no other voice uses the clip (which this call could not know)."""
        return 0
