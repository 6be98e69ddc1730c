"""Slash commands: `/clone` opens the clone form, `/voice` manages saved voices, `/say` speaks with one,
`/tts-check` tells whether a clip came from this bot, `/tts-health` answers admins with the health report."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.commands.clone import clone_command
from bot.slack.listeners.commands.say import say_command
from bot.slack.listeners.commands.tts_check import tts_check_command
from bot.slack.listeners.commands.tts_health import tts_health_command
from bot.slack.listeners.commands.voice import voice_command
from bot.slack.services import SlackServices


def register(app: AsyncApp, services: SlackServices) -> None:
    app.command("/clone")(clone_command(services))
    app.command("/voice")(voice_command(services))
    app.command("/say")(say_command(services))
    app.command("/tts-check")(tts_check_command(services))
    app.command("/tts-health")(tts_health_command(services))
