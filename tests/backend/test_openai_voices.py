"""Saved voices through the official `openai` client: upload with consent (`client.audio.voices.create`), the
list, speech in a saved voice, deletion, and every refusal of an upload naming its form field."""

from __future__ import annotations

import base64
import json

import openai
import pytest

from backend.voice_catalog import CONSENT_ID, CONSENT_STATEMENT
from backend.web import create_web_app
from tests.backend import openai_client
from tests.backend.openai_client import (
    CLIP,
    FAST,
    IDENTITY,
    TOKEN,
    TRANSCRIPT,
    post,
    sdk,
    speak,
    voice_list,
)
from tests.backend.test_web import NeverCalled
from tests.clips import sine_clip

app, client, voices = openai_client.app, openai_client.client, openai_client.voices  # the shared fixtures


# -- saved voices ---------------------------------------------------------------------------------------------
@pytest.mark.slow
async def test_a_saved_voice_speaks_like_its_clip_and_keeps_its_consent(client, voices):
    created = await client.audio.voices.create(name="Tone", consent=CONSENT_ID,
                                               audio_sample=("tone.wav", CLIP, "audio/wav"),
                                               extra_body={"ref_text": TRANSCRIPT})
    assert (created.id, created.name, created.object, created.type) == ("tone", "Tone", "audio.voice", "audio_sample")
    listed = await voice_list(client)
    assert "tone" in listed["voices"] and listed["object"] == "list"
    assert {"id": "tone", "object": "audio.voice", "name": "Tone", "type": "audio_sample",
            "created_at": created.created_at} in listed["data"]
    by_name = await client.audio.speech.create(model="qwen3-tts", input="Hello there.", voice="TONE",
                                               response_format="wav", extra_body=FAST | {"language": "English"})
    by_id = await client.audio.speech.create(model="qwen3-tts", input="Hello there.", voice={"id": "tone"},
                                             response_format="wav", extra_body=FAST | {"language": "English"})
    assert by_name.content == by_id.content == await speak(client)  # the saved clip and transcript, same seed
    consent = voices.find("anyone", "tone").consent
    assert (consent.statement_id, consent.statement, consent.confirmed_by) == (CONSENT_ID, CONSENT_STATEMENT,
                                                                              IDENTITY)
    assert TOKEN not in json.dumps([str(value) for value in vars(consent).values()])


@pytest.mark.slow
async def test_a_deleted_voice_is_gone_with_its_cached_prompt(app, client):
    await client.audio.voices.create(name="fleeting", consent=CONSENT_ID, audio_sample=("f.wav", CLIP, "audio/wav"),
                                     extra_body={"ref_text": TRANSCRIPT})
    await client.audio.speech.create(model="qwen3-tts", input="Hi.", voice="fleeting", extra_body=FAST)
    deleted = await client.audio.voices.delete("FLEETING")
    assert (deleted.id, deleted.deleted, deleted.object) == ("fleeting", True, "audio.voice.deleted")
    assert "fleeting" not in (await voice_list(client))["voices"]
    for call in (client.audio.speech.create(model="qwen3-tts", input="Hi.", voice="fleeting", extra_body=FAST),
                 client.audio.voices.delete("fleeting")):
        with pytest.raises(openai.NotFoundError) as caught:
            await call
        assert caught.value.code == "voice_not_found"
    # The engine forgot the voice prompt made from the saved clip: the same clip is encoded afresh.
    native = await post(app, "/clone", headers={"Authorization": f"Bearer {TOKEN}"}, json={
        "text": "Hi.", "language": "English", "ref_audio_base64": base64.b64encode(CLIP).decode(),
        "ref_text": TRANSCRIPT, "max_new_tokens": 8})
    assert native.json()["voice_cached"] is False


@pytest.mark.parametrize(
    ("form", "error", "code", "param"),
    [
        ({"consent": "yes"}, openai.BadRequestError, "consent_required", "consent"),
        ({"consent": ""}, openai.BadRequestError, "consent_required", "consent"),
        ({"name": "../x"}, openai.BadRequestError, "invalid_voice_name", "name"),
        ({"audio_sample": ("notes.txt", b"hello " * 200, "audio/wav")}, openai.BadRequestError, "not_audio",
         "audio_sample"),
        ({"audio_sample": ("short.wav", sine_clip(seconds=0.3), "audio/wav")}, openai.BadRequestError,
         "audio_too_short", "audio_sample"),
        ({"audio_sample": ("quiet.wav", sine_clip(amplitude=0.0), "audio/wav")}, openai.BadRequestError,
         "silent_audio", "audio_sample"),
        ({"extra_body": {"ref_text": "x" * 2000}}, openai.BadRequestError, "text_too_long", "ref_text"),
        ({"type": "prompt", "extra_body": {}}, openai.BadRequestError, "unsupported_voice_type", "type"),
    ],
)
async def test_an_upload_is_refused_with_the_field_at_fault(app, voices, form, error, code, param):
    fields = {"name": "refused", "consent": CONSENT_ID, "audio_sample": ("voice.wav", CLIP, "audio/wav")} | form
    with pytest.raises(error) as caught:
        await sdk(app).audio.voices.create(**fields)
    assert (caught.value.code, caught.value.param, caught.value.type) == (code, param, "invalid_request_error")
    assert voices.find("anyone", "refused") is None
    if code == "consent_required":
        assert CONSENT_ID in caught.value.message and CONSENT_STATEMENT in caught.value.message


async def test_a_taken_name_is_a_conflict_that_is_not_retried(app):
    client = sdk(app)
    await client.audio.voices.create(name="twice", consent=CONSENT_ID, audio_sample=("a.wav", CLIP, "audio/wav"))
    with pytest.raises(openai.ConflictError) as caught:
        await client.audio.voices.create(name="TWICE", consent=CONSENT_ID, audio_sample=("a.wav", CLIP, "audio/wav"))
    assert caught.value.code == "voice_name_taken" and caught.value.response.headers["x-should-retry"] == "false"


async def test_without_a_catalog_voices_are_sent_with_each_request():
    client = sdk(create_web_app(NeverCalled(), token=TOKEN))
    assert (await voice_list(client))["data"] == []
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await client.audio.voices.create(name="x", consent=CONSENT_ID, audio_sample=("a.wav", CLIP, "audio/wav"))
    assert caught.value.code == "uploads_closed"
