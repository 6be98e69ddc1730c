"""Speech for voice channels, the same on every platform: a text spoken as it is generated, in a saved voice, the
speaker's last reference clip, or a default voice.

`speak` (a user's `/speak`) and `read` (a message read aloud) check everything that can be refused before any
audio exists and raise it (`VoicebotError` with the user's message), so an adapter can answer at once; then they
hand back `Speech`: its chunks (24 kHz float) stream from the backend as the text is generated, long texts in
pieces side by side (`commands.long_text`). The adapter plays them and closes the speech when the playback ends
(`Speech.close`): that cancels what still generates, frees the user's admission slot and writes the audit entry
(kind "speak" or "read", with the seconds generated).

`/speak` is admitted like a clone job (per-user limit and cooldown, shared across processes); a read-aloud
message is not (people chat faster than a cooldown): the adapter's playback queue bounds it instead.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
import structlog

from backend.clients.base import AudioChunks
from backend.errors import BackendTimeout, InvalidInput, VoicebotError
from backend.languages import normalize_language
from backend.schema import FRAME_SECONDS, SAMPLE_RATE, CloneRequest
from backend.validation import check_text
from commands.audit_trail import JobKind
from commands.clone import CloneService
from commands.jobs import ID_ALPHABET, ID_LENGTH
from commands.long_text import stream_text
from commands.storage.voices import Member, Voice
from commands.voice_library import VoiceLibrary

log = structlog.get_logger(__name__)

NO_VOICE = ("Name a saved voice (the `voice` option; /voice list shows yours), or clone once with /clone: "
            "without a voice, the bot speaks with your last reference clip.")


class NoVoice(InvalidInput):
    code = "no_voice"


@dataclass(frozen=True)
class Speaker:
    """The voice a text is spoken in: the clip sent to the backend, its transcript, and the saved voice it
    came from (None for the speaker's last one-off clip)."""

    wav: bytes
    transcript: str | None
    voice: Voice | None


@dataclass(eq=False)
class Speech:
    """One text being spoken: iterate it for its chunks (once), then `close`. The backend's stream runs under
    the generation's deadline (`deadline_s`); a failure raises from the iteration and sets `outcome` to its
    code."""

    id: str
    member: Member
    text: str
    source: AudioChunks
    deadline_s: float
    voice_owner: str = ""  # whose voice it speaks in (member key): the saved voice's owner, or `member`'s own clip
    generated_s: float = 0.0  # seconds of audio generated so far
    first_chunk_s: float | None = None  # seconds from the start of the iteration to the first chunk
    outcome: str = "done"
    _finish: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def concerns(self, user_key: str) -> bool:
        """Whether the user asked for this speech or it speaks in their voice: what forget-me stops."""
        return user_key in (self.member.key, self.voice_owner)

    async def __aiter__(self) -> AsyncIterator[np.ndarray]:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline_s
        try:
            while True:
                try:
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
                        chunk = await anext(self.source)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise BackendTimeout(f"the backend did not finish within {self.deadline_s:g} s. Try a shorter "
                                         "text or try again later.") from None
                if self.first_chunk_s is None:
                    self.first_chunk_s = time.perf_counter() - started
                self.generated_s += len(chunk) / SAMPLE_RATE
                yield chunk
        except VoicebotError as exc:
            self.outcome = exc.code
            raise

    async def close(self, outcome: str | None = None) -> None:
        """End the speech (once; later calls do nothing): stop the generation, release the user's slot, audit.
        `outcome` overrides "done" (e.g. "stopped"), not a failure's code."""
        if outcome is not None and self.outcome == "done":
            self.outcome = outcome
        await self.source.aclose()  # type: ignore[attr-defined]
        while self._finish:
            await self._finish.pop()()


class SpeechService:
    """One per process, over the process's `CloneService` (backend, limits, admission) and voice library."""

    def __init__(self, service: CloneService, library: VoiceLibrary | None = None) -> None:
        self.service = service
        self.library = library
        self.settings = service.settings

    async def speaker(self, member: Member, voice_name: str | None) -> Speaker:
        """The saved voice `voice_name` (own first, then the server's), else the member's last clip."""
        if voice_name:
            if self.library is None:
                raise NoVoice("This bot keeps no saved voices; run /speak without a voice to use your last clip.")
            voice = await self.library.find(member, voice_name)
            return Speaker(await self.library.clip_of(member, voice), voice.transcript, voice)
        recent = self.service.recent_clips.last(member.key)
        if recent is None:
            raise NoVoice(NO_VOICE)
        return Speaker(recent.wav, recent.transcript, None)

    async def speak(self, member: Member, text: str, voice_name: str | None, language: str | None, *,
                    channel_id: str, is_admin: bool = False) -> Speech:
        """A user's `/speak`: checked and admitted (raises when refused), then streaming."""
        self._check(text, language)
        await self.service.queue.check_admission(member.key, is_admin=is_admin)  # cheap: before the voice
        speaker = await self.speaker(member, voice_name)
        return await self.speak_as(member, speaker, text, language, channel_id=channel_id, is_admin=is_admin)

    async def speak_as(self, member: Member, speaker: Speaker, text: str, language: str | None, *,
                       channel_id: str, kind: JobKind = "speak", is_admin: bool = False,
                       seed: int | None = None) -> Speech:
        """`speak` with the voice already chosen (the API's: a saved voice, or a clip sent with the request):
        checked and admitted like a clone job (raises when refused), then streaming; audited as `kind`."""
        text, language = self._check(text, language)
        speech_id = _new_id()
        admission = self.service.queue.admission
        await admission.start(member.key, speech_id, is_admin=is_admin)
        speech = self._speech(speech_id, member, speaker, text, language, channel_id, kind=kind, seed=seed)

        async def release() -> None:
            admission.release(member.key, speech_id, refund=False)

        speech._finish.append(release)
        return speech

    async def read(self, author: Member, text: str, speaker: Speaker, *, channel_id: str,
                   max_seconds: float | None = None) -> Speech:
        """A message read aloud in `speaker`'s voice, at most `max_seconds` long (the generation is cut there)."""
        text, language = self._check(text, None)
        return self._speech(_new_id(), author, speaker, text, language, channel_id, kind="read",
                            max_frames=None if max_seconds is None else int(max_seconds / FRAME_SECONDS) + 1)

    def _check(self, text: str, language: str | None) -> tuple[str, str]:
        return check_text(text, self.settings.max_text_chars), normalize_language(language)

    def _speech(self, speech_id: str, member: Member, speaker: Speaker, text: str, language: str, channel_id: str,
                *, kind: JobKind, max_frames: int | None = None, seed: int | None = None) -> Speech:
        _, backend = self.service.backend_for(None)
        request = CloneRequest(reference=speaker.wav, text=text, ref_text=speaker.transcript, language=language,
                               max_new_tokens=max_frames, seed=seed)
        speech = Speech(speech_id, member, text, stream_text(backend, request), self.settings.job_timeout_s,
                        voice_owner=speaker.voice.owner.key if speaker.voice is not None else member.key)
        log.info("speech.started", speech_id=speech_id, user_id=member.key, kind=kind, chars=len(text),
                 voice_id=speaker.voice.id if speaker.voice else None)

        async def audit() -> None:
            log.info("speech.ended", speech_id=speech_id, outcome=speech.outcome,
                     seconds=round(speech.generated_s, 2), first_chunk_s=speech.first_chunk_s)
            if self.library is not None:
                await self.library.audit.record(member, channel_id, speech_id, kind, speaker.voice, text,
                                                outcome=speech.outcome, audio_seconds=speech.generated_s)

        speech._finish.append(audit)
        return speech


def _new_id() -> str:
    """Speech ids look like job ids (users may read them back to admins): "S" and five more."""
    return "S" + "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH - 1))
