"""Slash commands through slack-bolt: `/clone` opens the form, `/tts-health` answers admins only."""

from __future__ import annotations

import json

from backend.errors import BackendUnavailable
from backend.languages import LANGUAGES
from bot.slack.files import AUDIO_FILETYPES
from commands.settings import CommandSettings
from tests.fakes import FakeBackend
from tests.slack.conftest import form_request


async def test_clone_acks_at_once_and_opens_the_form(slack):
    h = await slack(FakeBackend())
    fields = h.slash_fields("/clone")
    response = await h.dispatch(form_request(fields))
    assert (response.status, response.body) == (200, "")  # an empty ack: nothing posted in the channel
    opened = await h.fake.wait_for("views.open")
    assert opened.auth == "Bearer xoxb-test-token"
    assert opened.args["trigger_id"] == fields["trigger_id"]
    view = opened.args["view"]
    assert view["type"] == "modal" and view["callback_id"] == "clone_modal"
    blocks = {b["block_id"]: b for b in view["blocks"]}
    assert list(blocks) == ["reference", "text", "ref_text", "language"]
    file_input = blocks["reference"]["element"]
    assert file_input == {"type": "file_input", "action_id": "file", "filetypes": AUDIO_FILETYPES, "max_files": 1}
    assert {"wav", "mp3", "ogg", "m4a", "flac", "webm"} <= set(file_input["filetypes"])
    assert blocks["text"]["element"]["type"] == "plain_text_input" and not blocks["text"].get("optional")
    assert blocks["ref_text"]["optional"] is True
    select = blocks["language"]["element"]
    assert select["type"] == "static_select" and select["initial_option"]["value"] == "Auto"
    assert [o["value"] for o in select["options"]] == list(LANGUAGES)
    metadata = json.loads(view["private_metadata"])  # where the result goes once the form is submitted
    assert metadata == {"channel_id": "C1", "response_url": fields["response_url"]}
    assert not h.responses()


async def test_form_offers_a_variant_choice_when_several_are_configured(slack):
    h = await slack({"fa2": FakeBackend("fa2"), "sdpa": FakeBackend("sdpa")})
    view = await h.open_form()
    variant = next(b for b in view["blocks"] if b.get("block_id") == "variant")["element"]
    assert [o["value"] for o in variant["options"]] == ["fa2", "sdpa"]


async def test_clone_refused_up_front_when_the_bot_is_restarting(slack):
    h = await slack(FakeBackend())
    await h.services.clone.queue.drain(timeout=0)
    await h.dispatch(h.slash("/clone"))
    answer = await h.fake.wait_for(lambda c: c.path.startswith("/response_url/"))
    assert answer.args["response_type"] == "ephemeral" and "restarting" in answer.args["text"]
    assert not h.fake.of("views.open")


async def test_expired_trigger_is_explained(slack):
    h = await slack(FakeBackend())
    h.fake.fail["views.open"] = "expired_trigger_id"
    await h.dispatch(h.slash("/clone"))
    answer = await h.fake.wait_for(lambda c: c.path.startswith("/response_url/"))
    assert "3 s" in answer.args["text"] and answer.args["response_type"] == "ephemeral"


async def _health(h, user: str) -> dict:
    before = len(h.responses())
    await h.dispatch(h.slash("/tts-health", user=user))
    await h.fake.wait_for(lambda _: len(h.responses()) > before)
    return h.responses()[-1]


async def test_health_is_refused_to_a_member(slack):
    backend = FakeBackend()
    h = await slack(backend)
    answer = await _health(h, "U1")
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == ":no_entry: Only the bot's admins can use this command."
    assert h.fake.of("users.info")[0].args["user"] == "U1"  # asked Slack, on the server side
    assert backend.health_calls == 0


async def test_health_for_workspace_admins_and_owners(slack):
    backend = FakeBackend()
    h = await slack(backend)
    for user in ("UADMIN", "UOWNER"):
        answer = await _health(h, user)
        assert answer["response_type"] == "ephemeral"
        fields = [f["text"] for block in answer["blocks"] if block["type"] == "section" for f in block["fields"]]
        labels = [text.split("\n")[0].strip("*") for text in fields]
        assert labels[:5] == ["Backend", "Model", "Variant", "GPU", "Attention"]
        assert {"Voice cache", "Versions", "Bot uptime", "Queue", "Jobs", "Total time",
                "Real-time factor"} <= set(labels)
        assert "*Model*\nQwen/Qwen3-TTS-12Hz-0.6B-Base" in fields
        assert answer["blocks"][0]["text"]["text"] == "Voicebot health: all backends ok"
        assert all(len(block.get("fields", [])) <= 10 for block in answer["blocks"])
    assert backend.health_calls == 2


async def test_health_for_configured_admin_ids(slack):
    settings = CommandSettings(cooldown_s=0, admin_user_ids="slack:U7, U8", _env_file=None)
    h = await slack(FakeBackend(), settings)
    assert (await _health(h, "U7"))["blocks"]
    assert (await _health(h, "U8"))["blocks"]
    assert "Only the bot's admins" in (await _health(h, "U9"))["text"]


async def test_health_without_users_read_names_the_scope_to_admins_only(slack):
    settings = CommandSettings(cooldown_s=0, admin_user_ids="slack:U7", _env_file=None)
    h = await slack(FakeBackend(), settings)
    h.fake.scopes.discard("users:read")
    answer = await _health(h, "UADMIN")
    assert "missing a permission" in answer["text"]
    assert "users:read" not in answer["text"] and "OAuth" not in answer["text"]  # no operator detail for users
    report = await _health(h, "U7")  # configured admins do not depend on Slack's answer
    assert report["blocks"]
    assert "*Slack problem:* " in report["text"] and "lacks the users:read scope" in report["text"]
    assert "reinstall" in report["text"]


async def test_health_reports_an_unreachable_backend(slack):
    h = await slack(FakeBackend(health_error=BackendUnavailable("The Modal app voicebot-tts is not deployed.")))
    answer = await _health(h, "UADMIN")
    assert answer["blocks"][0]["text"]["text"] == "Voicebot health: a backend has a problem"
    assert "unreachable: The Modal app voicebot-tts is not deployed." in answer["text"]
