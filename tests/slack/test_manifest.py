"""The app manifest asks for what the code uses, and every command, shortcut and event in it has a listener."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.slack.listeners.shortcuts.clone_this_voice import CALLBACK_ID
from tests.fakes import FakeBackend
from tests.slack.conftest import event_request, form_request, interactive_request
from tests.slack.fake_slack import ALL_SCOPES

yaml = pytest.importorskip("yaml")
MANIFEST = Path(__file__).resolve().parents[2] / "bot" / "slack" / "manifest.yaml"


@pytest.fixture(scope="module")
def manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def test_scopes_and_socket_mode(manifest):
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == ALL_SCOPES == {
        "commands", "chat:write", "files:read", "files:write", "im:write", "app_mentions:read", "users:read"}
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_mention"]


def test_commands_and_shortcut(manifest):
    commands = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    assert list(commands) == ["/clone", "/voice", "/say", "/tts-check", "/tts-health"]
    assert commands["/voice"]["should_escape"] is True  # mentions arrive as <@U…|name>: block names a member by id
    assert all(len(c["description"]) <= 100 and len(c.get("usage_hint", "")) <= 100 for c in commands.values())
    (shortcut,) = manifest["features"]["shortcuts"]
    assert len(shortcut["description"]) <= 80
    assert shortcut == {**shortcut, "name": "Clone this voice", "type": "message", "callback_id": CALLBACK_ID}


async def test_every_manifest_entry_has_a_listener(slack, manifest):
    """Bolt answers 404 to a request no listener matches."""
    h = await slack(FakeBackend())
    for command in manifest["features"]["slash_commands"]:
        assert (await h.dispatch(h.slash(command["command"]))).status == 200, command
    shortcut = {"type": "message_action", "callback_id": CALLBACK_ID, "trigger_id": "9.9.9", "team": {"id": "T1"},
                "user": {"id": "U1"}, "channel": {"id": "C1"}, "message": {"ts": "1.2", "text": "hi"},
                "response_url": f"{h.fake.base}/response_url/s", "token": "legacy"}
    assert (await h.dispatch(interactive_request(shortcut))).status == 200
    mention = {"type": "app_mention", "user": "U1", "text": "<@UBOT> hi", "ts": "1.3", "channel": "C1"}
    assert (await h.dispatch(event_request(mention))).status == 200
    assert (await h.dispatch(form_request(h.slash_fields("/unknown")))).status == 404
    await h.fake.wait_for("views.open")
    await h.fake.wait_for("chat.postEphemeral")
    await h.settle()
