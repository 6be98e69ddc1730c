"""`voicebot discord`: the missing-token message, a rejected token, and the graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal

import discord
import pytest
import structlog

from backend import redaction
from bot.discord import run_discord
from bot.discord.runner import serve
from tests.clips import sine_clip
from tests.discord.conftest import make_client
from tests.discord.fake_api import (
    APPLICATION_COMMAND,
    CHANNEL_MESSAGE,
    EPHEMERAL,
    TOKEN,
    Invoker,
    clone_options,
    edit_of,
    followup_of,
    interaction,
)
from tests.fakes import FakeBackend


def test_missing_token_says_what_to_do(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    with pytest.raises(SystemExit) as exit_:
        run_discord(sync_global=False)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "DISCORD_TOKEN is not set" in err and "Reset Token" in err and ".env.example" in err


def test_the_token_is_masked_in_every_log_line(monkeypatch, tmp_path, capsys):
    """Whatever logs the token (here: a library quoting it in a gateway error), the line shows it masked."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(redaction, "_secrets", set())
    token = "plain-discord-token-9f8e7d"  # not shaped like a Discord token: only registration can mask it
    monkeypatch.setenv("DISCORD_TOKEN", token)
    monkeypatch.setenv("VOICEBOT_BACKEND", "local")
    monkeypatch.setenv("VOICEBOT_DATA_DIR", str(tmp_path / "data"))  # the SQLite library is created there

    async def serve(client, token_, *, grace_s):
        structlog.get_logger("discord.gateway").warning("gateway.closed", reason=f"session {token_} invalidated")

    monkeypatch.setattr("bot.discord.runner.serve", serve)
    run_discord(sync_global=False)
    err = capsys.readouterr().err
    assert "gateway.closed" in err and "session [redacted] invalidated" in err and token not in err


def test_an_unreachable_database_stops_the_bot_with_the_reason(monkeypatch, tmp_path, capsys):
    """A database that refuses connections: exit 1 and the redacted reason, before connecting to Discord."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISCORD_TOKEN", "plain-discord-token-1a2b3c")
    monkeypatch.setenv("VOICEBOT_BACKEND", "local")
    monkeypatch.setenv("VOICEBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VOICEBOT_DATABASE_URL", "postgresql://voicebot:db-password-77@127.0.0.1:1/voicebot")

    async def serve(client, token_, *, grace_s):
        raise AssertionError("the bot must not start without its database")

    monkeypatch.setattr("bot.discord.runner.serve", serve)
    with pytest.raises(SystemExit) as exit_:
        run_discord(sync_global=False)
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "nothing was changed" in err and "127.0.0.1" in err and "db-password-77" not in err


async def test_rejected_token_fails_login(fake_discord):
    client = make_client(FakeBackend(), fake_discord.api)
    with pytest.raises(discord.LoginFailure):
        await serve(client, "not.the.token")
    assert client.is_closed()


async def test_sigterm_lets_running_jobs_finish_and_tells_queued_users(fake_discord, monkeypatch):
    api = fake_discord.api
    backend = FakeBackend(hold=True)
    client = make_client(backend, api, max_concurrent_jobs=1)

    async def gateway(*, reconnect: bool = True) -> None:  # stands in for the websocket: open until closed
        while not client.is_closed():
            await asyncio.sleep(0.01)

    monkeypatch.setattr(client, "connect", gateway)
    server = asyncio.create_task(serve(client, TOKEN, grace_s=10))
    await api.wait_for(lambda c: c.method == "PUT")  # logged in and synced

    def clone(text: str) -> dict:
        attachment = api.attachment(sine_clip(2.0))
        payload = interaction(APPLICATION_COMMAND, clone_options(attachment, text), Invoker())
        client._connection.parse_interaction_create(payload)
        return payload

    running = clone("running")
    call = await backend.next_call()
    queued = clone("queued")
    await api.wait_for(lambda c: edit_of(queued)(c) and "queued, position 1" in c.content)

    os.kill(os.getpid(), signal.SIGTERM)
    told = await api.wait_for(lambda c: followup_of(queued)(c))
    assert told.flags == EPHEMERAL and "was not started: the bot is restarting" in told.content

    late = clone("late")  # while draining: refused at once
    refused = await api.wait_for(lambda c: c.path.endswith(f"/interactions/{late['id']}/{late['token']}/callback"))
    assert refused.json["type"] == CHANNEL_MESSAGE and "restarting" in refused.content

    assert not server.done()
    call.release()  # the running job finishes within the grace period and is delivered
    result = await api.wait_for(followup_of(running))
    assert result.files[0].filename == "running.wav" and result.flags == 0
    await asyncio.wait_for(server, 10)
    assert client.is_closed() and backend.closed
    assert len(backend.calls) == 1


def test_voice_playback_needs_libopus(monkeypatch):
    """With libopus the bot offers /speak (idle time from the settings); without it, no voice commands and a
    warning that says what to install."""
    from structlog.testing import capture_logs

    from bot.discord.runner import voice_playback
    from bot.settings import DiscordSettings

    settings = DiscordSettings(_env_file=None, token=TOKEN, voice_idle_s=45)  # type: ignore[call-arg]

    class Loaded:
        pass

    monkeypatch.setattr(discord.opus, "Encoder", Loaded)
    playback = voice_playback(settings)
    assert playback is not None and playback.idle_s == 45 and playback.voice_cls is discord.VoiceClient

    def missing() -> None:
        raise discord.opus.OpusNotLoaded()

    monkeypatch.setattr(discord.opus, "Encoder", missing)
    with capture_logs() as logs:
        assert voice_playback(settings) is None
    assert logs[0]["event"] == "discord.voice_unavailable" and "libopus0" in logs[0]["hint"]
