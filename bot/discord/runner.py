"""`voicebot discord`: settings from the environment / `.env`, the backend, the bot, and a graceful shutdown.

On SIGTERM or SIGINT the bot stops taking clone jobs, lets running jobs finish and post their audio for up to
VOICEBOT_SHUTDOWN_GRACE_S seconds, then disconnects. Jobs it could not finish stay in the job journal (their users
are told they will continue); the next start resumes them after logging in (`bot.discord.job_flow.resume_jobs`).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from functools import partial

import discord
import structlog

from backend.errors import VoicebotError
from backend.log_setup import setup_logging
from backend.redaction import register_secret
from bot.discord.client import VoicebotClient
from bot.discord.job_flow import resume_jobs
from bot.discord.playback.guilds import PlaybackSettings
from bot.services import open_services
from bot.settings import BotSettings, DiscordSettings
from commands.job_journal import taking_over

log = structlog.get_logger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGINT)

MISSING_TOKEN = """\
DISCORD_TOKEN is not set, so the Discord bot cannot log in.

  1. https://discord.com/developers/applications -> your application -> Bot -> Reset Token, copy it.
  2. Put it in the environment or in .env next to where you run voicebot:  DISCORD_TOKEN=...
     (see .env.example; for instant command updates while developing also set DISCORD_DEV_GUILD_ID).
"""


def run_discord(sync_global: bool = False) -> None:
    """Run the bot until SIGTERM/SIGINT. Exits with status 2 and a how-to when the token is missing or wrong."""
    bot_settings = BotSettings()
    setup_logging(bot_settings.log_level, bot_settings.log_format)
    settings = DiscordSettings()
    if settings.token is None or not settings.token.get_secret_value().strip():
        print(MISSING_TOKEN, file=sys.stderr)
        raise SystemExit(2)
    token = settings.token.get_secret_value().strip()
    register_secret(token)  # masked in every log line from here on, whatever logs it (discord.py included)

    async def main() -> None:
        async with open_services() as services:
            client = VoicebotClient(services.clone, settings, library=services.library, sync_global=sync_global,
                                    voice=voice_playback(settings), read_aloud=settings.read_aloud)
            await serve(client, token, grace_s=bot_settings.shutdown_grace_s)

    try:
        asyncio.run(main())
    except discord.PrivilegedIntentsRequired:
        print("Discord refused the Message Content intent that DISCORD_READ_ALOUD=1 asks for: switch it on in the "
              "Developer Portal (your application -> Bot -> Privileged Gateway Intents -> Message Content Intent), "
              "or unset DISCORD_READ_ALOUD.", file=sys.stderr)
        raise SystemExit(2) from None
    except discord.LoginFailure:
        print("Discord rejected DISCORD_TOKEN (401 Unauthorized): copy the bot token again from the Developer "
              "Portal (Bot -> Reset Token).", file=sys.stderr)
        raise SystemExit(2) from None
    except VoicebotError as exc:  # backend or database misconfiguration found at startup: the operator reads it
        print(exc.operator_text, file=sys.stderr)
        raise SystemExit(1) from None


def voice_playback(settings: DiscordSettings) -> PlaybackSettings | None:
    """Voice channels need libopus to encode speech (discord.py loads the system's: Debian `libopus0`); without
    it the bot runs without /speak and /read and says why in the log."""
    try:
        discord.opus.Encoder()
    except discord.opus.OpusNotLoaded:
        log.warning("discord.voice_unavailable", reason="libopus not found: /speak and /read are not offered",
                    hint="install the system's Opus library (Debian/Ubuntu: apt-get install libopus0)")
        return None
    return PlaybackSettings(idle_s=settings.voice_idle_s)


async def serve(client: VoicebotClient, token: str, *, grace_s: float = 60.0) -> None:
    """Log in, resume journaled jobs, connect and serve until SIGTERM/SIGINT (or the connection ends), then shut
    down gracefully: running jobs get `grace_s` to finish and post, the others are suspended in the journal (or,
    without one, their users are told to resubmit), backends are closed."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        async with client:
            await client.login(token)
            await resume_jobs(client)  # jobs a previous process left: REST is enough, before the gateway
            connection = asyncio.create_task(client.connect(), name="discord")
            stopping = asyncio.create_task(stop.wait(), name="discord-stop")
            async with taking_over(partial(resume_jobs, client)):  # and those of a process that died since
                await asyncio.wait({connection, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if connection.done():  # login failed or the gateway gave up: nothing to drain
                connection.result()
            else:
                log.info("discord.signal_received")
                _restore_signals(loop)  # a second Ctrl-C gets the default behaviour: stop now
                await client.shutdown(grace_s)
                await connection
    finally:
        _restore_signals(loop)
        await client.service.aclose()
        log.info("discord.stopped")


def _restore_signals(loop: asyncio.AbstractEventLoop) -> None:
    for sig in SIGNALS:
        loop.remove_signal_handler(sig)
