"""Speech for voice channels: which voice, what is refused before any audio, admission, deadline and audit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from backend.errors import BackendTimeout
from commands.clone import CloneService
from commands.errors import Cooldown
from commands.read_aloud import voice_of
from commands.settings import CommandSettings
from commands.speech import NoVoice, SpeechService
from commands.storage.sql import open_storage
from commands.storage.voices import Member
from commands.voice_library import Blocked, VoiceLibrary
from tests.clips import sine_clip
from tests.fakes import FakeBackend, NeverAnswers

ALICE = Member("discord", "g1", "111")
ADMIN = Member("discord", "g1", "999")
CLIP = sine_clip(3.0, 24_000)


@pytest.fixture
async def make(tmp_path) -> AsyncIterator:
    opened = []

    async def build(backend: FakeBackend | None = None, **overrides: Any) -> SpeechService:
        values: dict[str, Any] = {"data_dir": tmp_path / f"d{len(opened)}", "cooldown_s": 0.0, "max_jobs_per_user": 5}
        settings = CommandSettings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]
        storage = await open_storage(settings)
        library = VoiceLibrary(storage, CloneService(backend or FakeBackend(), settings), settings)
        opened.append((library, storage))
        return SpeechService(library.service, library)

    yield build
    for library, storage in opened:
        await library.aclose()
        await storage.close()


async def play(speech) -> np.ndarray:
    try:
        return np.concatenate([chunk async for chunk in speech])
    finally:
        await speech.close()


async def test_without_a_voice_or_a_last_clip_the_user_is_told_what_to_do(make) -> None:
    speech = await make()
    with pytest.raises(NoVoice, match="Name a saved voice"):
        await speech.speak(ALICE, "Hello", None, None, channel_id="c1")


async def test_without_a_voice_the_last_cloned_clip_speaks(make) -> None:
    backend = FakeBackend()
    speech = await make(backend)
    job = await speech.service.submit(ALICE.key, "test:g1/c1", CLIP, "clip.wav", "First clone", "the words")
    await job.wait()
    audio = await play(await speech.speak(ALICE, "Now speak", None, "English", channel_id="c1"))
    assert len(audio) == 2.0 * 24_000
    streamed = backend.streamed[0]
    assert (streamed.text, streamed.ref_text, streamed.language) == ("Now speak", "the words", "English")
    assert streamed.reference == backend.calls[0].reference  # the clip the clone used
    await speech.library.forget_me(ALICE)  # forgetting the user forgets their last clip too
    with pytest.raises(NoVoice):
        await speech.speak(ALICE, "Again", None, None, channel_id="c1")


async def test_a_saved_voice_speaks_and_the_speech_is_audited(make) -> None:
    backend = FakeBackend()
    speech = await make(backend)
    pending = await speech.library.prepare_save(ALICE, "Narrator", "me", CLIP, "clip.wav", "la la")
    voice = await speech.library.confirm_save(pending.id, ALICE)
    spoken = await speech.speak(ALICE, "Hello there", "narrator", None, channel_id="c1")
    await play(spoken)
    assert backend.streamed[0].ref_text == "la la"
    entries = await speech.library.recent_activity(ADMIN, 5, is_admin=True)
    assert [(e.kind, e.job_id, e.voice_id, e.outcome, e.audio_seconds) for e in entries] == [
        ("speak", spoken.id, voice.id, "done", 2.0)]


async def test_speak_is_admitted_like_a_job(make) -> None:
    speech = await make(cooldown_s=30.0)
    await speech.service.submit(ALICE.key, "test:g1/c1", CLIP, "clip.wav", "First clone")
    await speech.service.queue.flush(timeout=5)
    speech.service.queue.admission.cooldown_s = 0.0
    first = await speech.speak(ALICE, "One", None, None, channel_id="c1")
    speech.service.queue.admission.cooldown_s = 30.0
    with pytest.raises(Cooldown):
        await speech.speak(ALICE, "Two", None, None, channel_id="c1")
    await first.close()


async def test_a_blocked_member_cannot_speak_with_a_saved_voice(make) -> None:
    speech = await make()
    pending = await speech.library.prepare_save(ALICE, "Narrator", "me", CLIP, "clip.wav")
    await speech.library.confirm_save(pending.id, ALICE)
    await speech.library.block(ADMIN, ALICE.user_id, is_admin=True)
    with pytest.raises(Blocked):
        await speech.speak(ALICE, "Hello", "Narrator", None, channel_id="c1")


async def test_a_read_message_is_capped_at_its_seconds(make) -> None:
    backend = FakeBackend()
    speech = await make(backend)
    speaker = await _last_clip_speaker(speech)
    await play(await speech.read(ALICE, "A message", speaker, channel_id="c1", max_seconds=10))
    assert backend.streamed[0].max_new_tokens == 126  # 10 s of 80 ms frames, plus the one never spoken


async def test_a_stalled_backend_fails_the_speech_at_its_deadline(make) -> None:
    speech = await make(NeverAnswers(), job_timeout_s=0.05)
    speaker = await _last_clip_speaker(speech)
    spoken = await speech.read(ALICE, "A message", speaker, channel_id="c1")
    with pytest.raises(BackendTimeout):
        await play(spoken)
    assert spoken.outcome == BackendTimeout.code


async def _last_clip_speaker(speech: SpeechService):
    speech.service.recent_clips.remember(ALICE.key, CLIP, None)
    return await speech.speaker(ALICE, None)


async def test_a_message_is_read_in_its_authors_latest_voice_else_the_default(make) -> None:
    speech = await make()
    library = speech.library
    default = await _last_clip_speaker(speech)
    bob = Member("discord", "g1", "222")
    assert await voice_of(library, bob, default) is default  # no voice of his own
    assert await voice_of(library, bob, None) is None  # not read at all
    voices = []
    for name in ("First", "Second"):
        pending = await library.prepare_save(ALICE, name, "me", CLIP, "clip.wav")
        voices.append(await library.confirm_save(pending.id, ALICE))
    assert (await voice_of(library, ALICE, default)).voice.id == voices[1].id  # the newest
    await library.storage.voices.mark_used(voices[0].id, datetime.now(UTC))
    assert (await voice_of(library, ALICE, default)).voice.id == voices[0].id  # the one used last
    elsewhere = Member("discord", "g2", ALICE.user_id)
    assert await voice_of(library, elsewhere, None) is None  # voices of another server are not hers here
    await library.block(ADMIN, ALICE.user_id, is_admin=True)
    await library.block(ADMIN, bob.user_id, is_admin=True)
    for blocked in (ALICE, bob):  # not in their own voices, nor in the session's
        with pytest.raises(Blocked):
            await voice_of(library, blocked, default)
