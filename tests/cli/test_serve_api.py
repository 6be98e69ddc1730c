"""`voicebot serve-api`: the OpenAI-compatible API on the bots' voice library, through the official `openai`
client over an ASGI transport, on SQLite and PostgreSQL, with the tests' fake backend.

Who may call (a member's key; revoked, unknown, malformed or missing: 401; blocked: 403), what they see and
may change (exactly what `/say` and `/voice delete` let them), that speech is the bots' (the stored clip byte
for byte, the shared limits, the audit trail) and that the process starts closed and without torch."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx2
import openai
import pytest
from typer.testing import CliRunner

from backend.voice_catalog import CONSENT_ID, CONSENT_STATEMENT
from bot.api_server import create_api_app
from bot.cli import app as cli
from commands.api_keys import ApiKeys, IssuedKey, NoApi
from commands.api_speech import API_CHANNEL
from commands.clone import CloneService
from commands.storage.voices import Member, Voice
from commands.voice_library import Blocked, VoiceLibrary
from bot.services import voice_library
from tests.backend.openai_client import sdk, voice_list
from tests.clips import sine_clip
from tests.fakes import FakeBackend

ROOT = Path(__file__).parents[2]
PUBLIC_URL = "https://tts.example.org"
ALICE = Member("discord", "guild1", "111")
BOB = Member("discord", "guild1", "222")
CAROL = Member("discord", "guild2", "333")
CLIP = sine_clip(seconds=3.0)


@dataclass
class Api:
    app: object
    backend: FakeBackend
    service: CloneService
    library: VoiceLibrary
    keys: ApiKeys

    async def key(self, member: Member = ALICE) -> IssuedKey:
        return await self.keys.issue(member)

    async def client(self, member: Member = ALICE) -> openai.AsyncOpenAI:
        return sdk(self.app, (await self.key(member)).key)

    async def save(self, name: str, owner: Member = ALICE, scope: str = "me", amplitude: float = 0.3) -> Voice:
        pending = await self.library.prepare_save(owner, name, scope, sine_clip(seconds=3.0, amplitude=amplitude),
                                                  "clip.wav")
        return await self.library.confirm_save(pending.id, owner)


@pytest.fixture
async def api(database_settings):
    settings = database_settings.model_copy(update={"api_public_url": PUBLIC_URL, "cooldown_s": 0.0})
    backend = FakeBackend()
    service = CloneService(backend, settings)
    async with voice_library(service) as library:
        yield Api(create_api_app(service, library, ApiKeys(library.storage, settings)), backend, service, library,
                  ApiKeys(library.storage, settings))
        await service.queue.drain(timeout=1)


async def speak(client: openai.AsyncOpenAI, voice, **extra) -> bytes:
    response = await client.audio.speech.create(model="qwen3-tts", input="Hello from the API.", voice=voice,
                                                response_format="wav", extra_body=extra or None)
    return response.content


# -- who may call ---------------------------------------------------------------------------------------------
async def test_missing_malformed_unknown_and_revoked_keys_are_refused_in_openais_shape(api, caplog):
    caplog.set_level(logging.DEBUG)
    issued = await api.key()
    revoked = await api.key(BOB)
    await api.keys.revoke(BOB)
    wrong_shape = "vb_short"
    unknown = "vb_" + "A" * 43
    for key in (wrong_shape, unknown, revoked.key, issued.key.upper(), f" {issued.key}x"):
        with pytest.raises(openai.AuthenticationError) as caught:
            await voice_list(sdk(api.app, key))
        assert (caught.value.status_code, caught.value.code, caught.value.type) == (401, "unauthorized",
                                                                                     "authentication_error")
        assert caught.value.response.headers["www-authenticate"] == "Bearer"
        assert "/voice api-key" in caught.value.message
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=api.app), base_url="http://tts") as raw:
        for headers in ({}, {"Authorization": issued.key}, {"Authorization": f"Basic {issued.key}"}):
            answer = await raw.post("/v1/audio/speech", headers=headers, json={})
            assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized"
    assert (await voice_list(sdk(api.app, issued.key)))["data"] == []  # the right one works
    assert not [record for record in caplog.records if issued.key in record.getMessage()
                or revoked.key in record.getMessage()]


async def test_the_key_is_checked_before_the_declared_size_and_both_before_the_body(api):
    issued = await api.key()
    oversized = {"content-length": str(50 * 1024 * 1024), "content-type": "application/json"}
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=api.app), base_url="http://tts") as raw:
        anonymous = await raw.post("/v1/audio/speech", headers=oversized, content=b"{}")
        too_large = await raw.post("/v1/audio/speech", content=b"{}",
                                   headers=oversized | {"Authorization": f"Bearer {issued.key}"})
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")
    assert (too_large.status_code, too_large.json()["error"]["code"]) == (413, "body_too_large")
    assert api.backend.calls == []


async def test_a_blocked_member_is_refused_and_gets_no_key(api):
    client = await api.client(BOB)
    await api.library.block(ALICE, BOB.user_id, is_admin=True)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await voice_list(client)
    assert (caught.value.status_code, caught.value.code) == (403, "blocked")
    with pytest.raises(Blocked):
        await api.key(BOB)
    await api.library.unblock(ALICE, BOB.user_id, is_admin=True)
    assert (await voice_list(client))["data"] == []  # the key outlived the block


async def test_no_key_is_issued_without_the_apis_public_url(api):
    closed = ApiKeys(api.library.storage, api.library.settings.model_copy(update={"api_public_url": None}))
    with pytest.raises(NoApi) as caught:
        await closed.issue(ALICE)
    assert caught.value.message == "This bot does not offer an API for its voices."


# -- what they see ----------------------------------------------------------------------------------------------
async def test_the_list_is_what_say_can_use(api):
    await api.save("Narrator")
    await api.save("Announcer", BOB, "server", amplitude=0.2)
    await api.save("Secret", BOB, amplitude=0.25)
    await api.save("Echo", BOB, "server", amplitude=0.35)
    await api.save("echo", amplitude=0.4)  # Alice's own "echo" shadows the server's, for /say and for the API
    await api.save("Elsewhere", CAROL, "server", amplitude=0.45)
    listed = await voice_list(await api.client())
    assert [(voice["id"], voice["name"]) for voice in listed["data"]] == [
        ("echo", "echo"), ("narrator", "Narrator"), ("announcer", "Announcer")]
    assert listed["voices"] == ["echo", "narrator", "announcer"]


async def test_a_name_richer_than_an_openai_id_is_listed_by_its_key_and_usable_by_it(api):
    saved = await api.save("Zoë's  Voice")
    client = await api.client()
    (listed,) = (await voice_list(client))["data"]
    assert (listed["id"], listed["name"]) == ("zoë's voice", "Zoë's Voice")
    for voice in (listed["id"], {"id": listed["id"]}, "ZOË'S VOICE"):
        await speak(client, voice)
    stored = await api.library.storage.clips.get(saved.clip_sha256)
    assert [call.reference == stored for call in api.backend.calls] == [True, True, True]
    deleted = await client.audio.voices.delete(listed["id"])
    assert (deleted.id, deleted.deleted) == ("zoë's voice", True)
    assert await api.library.voices(ALICE) == []


# -- speech ---------------------------------------------------------------------------------------------------
async def test_speech_with_a_saved_voice_sends_the_stored_clip_whole_and_streamed(api):
    saved = await api.save("Narrator")
    stored = await api.library.storage.clips.get(saved.clip_sha256)
    client = await api.client()
    whole = await speak(client, "narrator", language="English")
    assert whole[:4] == b"RIFF" and api.backend.calls[-1].reference == stored
    async with client.audio.speech.with_streaming_response.create(
            model="tts-1", input="Streamed from the API.", voice="Narrator", response_format="pcm",
            extra_body={"stream_format": "audio"}) as response:
        pcm = b"".join([chunk async for chunk in response.iter_bytes()])
    assert len(pcm) == 2 * 48_000  # the fake's 2 s at 24 kHz, 16-bit
    (streamed,) = api.backend.streamed
    assert streamed.reference == stored and streamed.text == "Streamed from the API."


async def test_the_requests_own_fields_are_honoured_or_refused(api):
    pending = await api.library.prepare_save(ALICE, "Narrator", "me", CLIP, "clip.wav", "A test tone.")
    await api.library.confirm_save(pending.id, ALICE)
    client = await api.client()
    await speak(client, "narrator", seed=7)
    await speak(client, "narrator", x_vector_only_mode=True)
    assert [(call.ref_text, call.seed) for call in api.backend.calls] == [("A test tone.", 7), (None, None)]
    with pytest.raises(openai.BadRequestError) as caught:
        await speak(client, "narrator", max_new_tokens=8)
    assert (caught.value.code, caught.value.param) == ("unsupported_max_new_tokens", "max_new_tokens")


async def test_a_clip_sent_with_the_request_is_a_one_off_clone(api):
    import base64

    client = await api.client()
    await speak(client, "anything", ref_audio=base64.b64encode(CLIP).decode(), ref_text="A tone.")
    assert api.backend.calls[-1].ref_text == "A tone."
    await api.library.audit.settle()
    (entry,) = await api.library.storage.audit.recent("discord", "guild1")
    assert (entry.kind, entry.channel_id, entry.voice_name) == ("clone", API_CHANNEL, None)


async def test_every_generation_is_audited_as_coming_from_the_api(api):
    await api.save("Narrator")
    client = await api.client()
    await speak(client, "narrator")
    async with client.audio.speech.with_streaming_response.create(
            model="tts-1", input="Streamed.", voice="narrator", response_format="pcm",
            extra_body={"stream_format": "audio"}) as response:
        await response.read()
    await api.library.audit.settle()
    entries = await api.library.storage.audit.recent("discord", "guild1")
    assert sorted((entry.kind, entry.channel_id, entry.user_id, entry.voice_name, entry.outcome)
                  for entry in entries) == [("say", API_CHANNEL, "111", "Narrator", "done")] * 2
    assert (await api.library.find(ALICE, "narrator")).uses == 1  # as /say counts it


async def test_the_bots_limits_apply(api):
    api.service.queue.admission.cooldown_s = 60.0
    await api.save("Narrator")
    client = await api.client()
    await speak(client, "narrator")
    for stream in (False, True):
        with pytest.raises(openai.RateLimitError) as caught:
            await client.audio.speech.create(model="tts-1", input="Again.", voice="narrator",
                                             extra_body={"stream_format": "audio"} if stream else None)
        assert caught.value.code == "cooldown" and int(caught.value.response.headers["retry-after"]) > 0
    assert len(api.backend.calls) == 1


# -- saving and deleting ----------------------------------------------------------------------------------------
async def test_an_upload_with_consent_lands_in_the_library(api):
    client = await api.client()
    created = await client.audio.voices.create(name="Fresh Voice", consent=CONSENT_ID,
                                               audio_sample=("fresh.wav", CLIP, "audio/wav"),
                                               extra_body={"ref_text": "A tone."})
    assert (created.id, created.name) == ("fresh voice", "Fresh Voice")
    (voice,) = await api.library.voices(ALICE)  # what /voice list shows
    assert (voice.name, voice.scope, voice.owner, voice.transcript) == ("Fresh Voice", "me", ALICE, "A tone.")
    assert voice.consent.statement == f"[{CONSENT_ID}] {CONSENT_STATEMENT}" and voice.consent.confirmed_by == ALICE.key
    await speak(client, "fresh voice")
    assert api.backend.calls[-1].reference == await api.library.storage.clips.get(voice.clip_sha256)


@pytest.mark.parametrize(("form", "error", "code"), [
    ({"consent": ""}, openai.BadRequestError, "consent_required"),
    ({"name": "Bad*Name"}, openai.BadRequestError, "bad_voice_name"),
    ({"name": "Taken"}, openai.ConflictError, "name_taken"),
])
async def test_an_upload_is_refused_by_the_librarys_rules(api, form, error, code):
    await api.save("Taken")
    fields = {"name": "New", "consent": CONSENT_ID, "audio_sample": ("a.wav", CLIP, "audio/wav")} | form
    with pytest.raises(error) as caught:
        await (await api.client()).audio.voices.create(**fields)
    assert caught.value.code == code
    assert [voice.name for voice in await api.library.voices(ALICE)] == ["Taken"]


async def test_the_per_member_limit_holds(api):
    api.library.settings = api.library.settings.model_copy(update={"max_voices_per_user": 1})
    client = await api.client()
    await client.audio.voices.create(name="One", consent=CONSENT_ID, audio_sample=("a.wav", CLIP, "audio/wav"))
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await client.audio.voices.create(name="Two", consent=CONSENT_ID, audio_sample=("a.wav", CLIP, "audio/wav"))
    assert caught.value.code == "too_many_voices"


async def test_only_what_voice_delete_allows_is_deleted(api):
    await api.save("Shared", BOB, "server")
    await api.save("Private", BOB, amplitude=0.2)
    mine = await api.save("Mine", amplitude=0.25)
    client = await api.client()
    with pytest.raises(openai.PermissionDeniedError) as caught:
        await client.audio.voices.delete("shared")
    assert caught.value.code == "permission_denied"
    with pytest.raises(openai.NotFoundError):
        await client.audio.voices.delete("private")  # Bob's private voice is not even revealed
    await client.audio.voices.delete("mine")
    assert sorted(voice.name for voice in await api.library.voices(BOB)) == ["Private", "Shared"]
    assert [voice.name for voice in await api.library.voices(ALICE)] == ["Shared"]
    assert api.backend.forgotten == [mine.clip_sha256]  # the backend's cached prompt went with it


async def test_forget_me_deletes_the_members_keys(api):
    here, elsewhere = await api.key(ALICE), await api.key(Member("discord", "guild2", ALICE.user_id))
    report = await api.library.forget_me(ALICE)
    assert report.api_keys == 2 and "API keys deleted: 2" in report.summary()
    for issued in (here, elsewhere):
        with pytest.raises(openai.AuthenticationError):
            await voice_list(sdk(api.app, issued.key))


# -- the process ------------------------------------------------------------------------------------------------
def test_serve_api_binds_loopback_by_default(monkeypatch):
    served: list[tuple[str, int]] = []
    monkeypatch.setattr("bot.api_server.serve_api", lambda host, port: served.append((host, port)))
    result = CliRunner().invoke(cli, ["serve-api"])
    assert result.exit_code == 0, result.output
    assert served == [("127.0.0.1", 8100)]


def run_serve_api(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """`api_app` opened and closed in a fresh interpreter with an HTTP backend: what was imported."""
    code = ("import asyncio, sys\nfrom bot.api_server import api_app\n"
            "async def main():\n    async with api_app():\n        pass\n"
            "asyncio.run(main())\nprint('torch' in sys.modules)")
    environment = {**os.environ, "VOICEBOT_DATA_DIR": str(tmp_path), "VOICEBOT_BACKEND": "http",
                   "VOICEBOT_HTTP_URL": "http://127.0.0.1:9", "VOICEBOT_DATABASE_URL": "", **env}
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=environment, capture_output=True,
                          text=True, timeout=120)


def test_with_a_remote_backend_serve_api_never_imports_torch(tmp_path):
    out = run_serve_api(tmp_path, VOICEBOT_API_PUBLIC_URL=PUBLIC_URL, PYTHONPATH=str(ROOT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "False"  # after the log lines


@pytest.mark.parametrize(("env", "said"), [
    ({"VOICEBOT_API_PUBLIC_URL": ""}, "VOICEBOT_API_PUBLIC_URL"),
    ({"VOICEBOT_API_PUBLIC_URL": PUBLIC_URL, "VOICEBOT_DATABASE_URL": "postgresql://voicebot:hunter2@127.0.0.1:9/x",
      "VOICEBOT_DATABASE_TIMEOUT_S": "2"}, "storage"),
])
def test_serve_api_refuses_to_start_closed_or_without_storage(tmp_path, monkeypatch, env, said):
    for name, value in {"VOICEBOT_DATA_DIR": str(tmp_path), "VOICEBOT_BACKEND": "http",
                        "VOICEBOT_HTTP_URL": "http://127.0.0.1:9", **env}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["serve-api", "--port", "1"])
    assert result.exit_code == 1
    assert said in result.output and "hunter2" not in result.output
