"""`/voice api-key` on Slack: the key shown once, only to the caller (an ephemeral answer), with the base URL,
the model and their voices; closed without the API's public URL; revoked with `/voice api-key revoke`. The key
works against `voicebot serve-api` on the same services, which shares the workspace's library."""

from __future__ import annotations

import re

import openai
import pytest

from backend.voice_catalog import CONSENT_ID
from bot.api_server import create_api_app
from commands.api_keys import ApiKeys
from commands.settings import CommandSettings
from tests.backend.openai_client import sdk, voice_list
from tests.clips import sine_clip
from tests.fakes import FakeBackend
from tests.slack import test_secrets

PUBLIC_URL = "https://tts.example.org"
OPEN = CommandSettings(cooldown_s=0, _env_file=None, api_public_url=PUBLIC_URL)
KEY = re.compile(r"vb_[A-Za-z0-9_-]{43}")
log_text = test_secrets.log_text  # the fixture: every log line as the product's handler writes it


def api_of(h):
    library = h.services.library
    return create_api_app(h.services.clone, library, ApiKeys(library.storage, library.settings))


async def test_a_key_is_shown_once_to_the_caller_only_and_works_on_the_api(slack, log_text):
    h = await slack(FakeBackend(), OPEN)  # logging as `voicebot slack` runs it, at DEBUG
    await h.save_voice("Narrator")
    await h.save_voice("Announcer", user="U2", scope="server")
    answer = await h.command("/voice", "api-key")
    assert answer["response_type"] == "ephemeral"
    (key,) = KEY.findall(answer["text"])
    assert f"`{PUBLIC_URL}/v1`" in answer["text"] and "`qwen3-tts`" in answer["text"]
    assert "`Narrator`, `Announcer`" in answer["text"]
    posted = [call for call in h.fake.calls if key in str(call.args)]
    assert [call.path.startswith("/response_url/") for call in posted] == [True]  # nowhere else
    logs = log_text.getvalue()
    assert "api_key.issued" in logs  # redacted as written: Slack's client logs the answer it posts at DEBUG
    assert key not in logs

    client = sdk(api_of(h), key)
    assert (await voice_list(client))["voices"] == ["narrator", "announcer"]
    await client.audio.voices.create(name="From Code", consent=CONSENT_ID,
                                     audio_sample=("c.wav", sine_clip(seconds=3.0), "audio/wav"))
    listed = await h.command("/voice", "list")
    assert "*From Code* · yours" in listed["text"]  # the API's upload is in the bots' library


async def test_a_new_key_replaces_the_old_and_revoke_ends_it(slack):
    h = await slack(FakeBackend(), OPEN)
    (old,) = KEY.findall((await h.command("/voice", "api-key"))["text"])
    (new,) = KEY.findall((await h.command("/voice", "api-key"))["text"])
    api = api_of(h)
    with pytest.raises(openai.AuthenticationError):
        await voice_list(sdk(api, old))
    assert (await voice_list(sdk(api, new)))["data"] == []
    revoked = await h.command("/voice", "api-key revoke")
    assert revoked["response_type"] == "ephemeral" and "revoked" in revoked["text"]
    with pytest.raises(openai.AuthenticationError):
        await voice_list(sdk(api, new))
    assert "no API key" in (await h.command("/voice", "api-key revoke"))["text"]


async def test_without_the_apis_public_url_no_key_is_issued(slack):
    h = await slack(FakeBackend())
    answer = await h.command("/voice", "api-key")
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == ":x: This bot does not offer an API for its voices." and not KEY.search(answer["text"])


async def test_a_blocked_member_gets_no_key(slack):
    h = await slack(FakeBackend(), OPEN)
    await h.command("/voice", "block <@U2>", user="UADMIN")
    answer = await h.command("/voice", "api-key", user="U2")
    assert "stopped you" in answer["text"] and not KEY.search(answer["text"])
