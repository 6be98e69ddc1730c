"""Shortcuts: "Clone this voice" in a message's menu."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.shortcuts.clone_this_voice import CALLBACK_ID, clone_this_voice
from bot.slack.services import SlackServices


def register(app: AsyncApp, services: SlackServices) -> None:
    app.shortcut(CALLBACK_ID)(clone_this_voice(services))
