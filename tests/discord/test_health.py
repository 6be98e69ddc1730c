"""`/tts-health`: refused on the server for non-admins, an ephemeral embed for Discord admins and configured ids."""

from __future__ import annotations

import pytest

from backend.errors import BackendUnavailable
from tests.discord.fake_api import (
    ADMIN,
    APPLICATION_COMMAND,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    EPHEMERAL,
    Invoker,
    followup_of,
    slash,
)
from tests.fakes import FakeBackend


def health(bot, invoker: Invoker) -> dict:
    return bot.send(APPLICATION_COMMAND, slash("tts-health", []), invoker)


async def test_non_admin_is_refused_server_side(discord_bot):
    backend = FakeBackend()
    bot = await discord_bot(backend)
    manage_server = 1 << 5  # powerful, but not administrator
    response = await bot.response(health(bot, Invoker(permissions=manage_server)))
    assert response.json["type"] == CHANNEL_MESSAGE and response.flags == EPHEMERAL
    assert response.content == "Only the bot's admins can use this command."
    assert backend.health_calls == 0


@pytest.mark.parametrize("who", ["discord admin", "configured id"])
async def test_admin_gets_the_ephemeral_report(discord_bot, who):
    backend = FakeBackend()
    invoker = Invoker(permissions=ADMIN) if who == "discord admin" else Invoker()
    bot = await discord_bot(backend, admin_user_ids=[f"discord:{invoker.user_id}"] if who == "configured id" else [])
    payload = health(bot, invoker)
    defer = await bot.response(payload)
    assert defer.json == {"type": DEFERRED_CHANNEL_MESSAGE, "data": {"flags": EPHEMERAL}}
    followup = await bot.api.wait_for(followup_of(payload))
    assert followup.flags == EPHEMERAL
    [embed] = followup.embeds
    assert embed["title"] == "Voice clone health: all good"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Model"] == "Qwen/Qwen3-TTS-12Hz-0.6B-Base"
    assert fields["GPU"] == "Fake GPU" and fields["Attention"] == "sdpa, bfloat16"
    assert fields["Backend"] == "ok, warm"
    assert "torch 2.9.0" in fields["Versions"]
    assert fields["Jobs"] == "0 done, 0 failed"
    assert {"Bot uptime", "Queue", "Total time", "Queue wait", "Real-time factor"} <= set(fields)
    assert backend.health_calls == 1


async def test_unreachable_variant_is_part_of_the_report(discord_bot):
    down = FakeBackend("0.6b", health_error=BackendUnavailable("Modal app voicebot-tts is not deployed."))
    bot = await discord_bot({"fa2": FakeBackend("fa2"), "0.6b": down})
    payload = health(bot, Invoker(permissions=ADMIN))
    followup = await bot.api.wait_for(followup_of(payload))
    [embed] = followup.embeds
    assert embed["title"] == "Voice clone health: problems"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Backend (0.6b)"] == "unreachable: Modal app voicebot-tts is not deployed."
    assert fields["Backend (fa2)"] == "ok, warm"


async def test_unexpected_error_is_logged_and_answered(discord_bot, monkeypatch):
    bot = await discord_bot(FakeBackend())

    async def broken_health(**_):
        raise RuntimeError("bug in the health report")

    monkeypatch.setattr(bot.service, "health", broken_health)
    payload = health(bot, Invoker(permissions=ADMIN))
    followup = await bot.api.wait_for(followup_of(payload))
    assert followup.flags == EPHEMERAL
    assert followup.content == "Something went wrong on our side; the admins have the log."
    [record] = bot.logged_errors.records
    assert record.msg["event"] == "discord.unexpected_error" and record.msg["command"] == "tts-health"
    assert "bug in the health report" in repr(record.msg["exc_info"])
    bot.logged_errors.records.clear()
