"""Options for `external_select` menus: the voice pickers of the say and rename forms."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.options.voice_names import voice_options
from bot.slack.services import SlackServices
from bot.slack.voice_forms import VOICE_ACTION


def register(app: AsyncApp, services: SlackServices) -> None:
    app.options(VOICE_ACTION)(voice_options(services))
