"""Events API: `app_mention` with a clip attached."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.events.app_mention import clone_on_mention
from bot.slack.services import SlackServices


def register(app: AsyncApp, services: SlackServices) -> None:
    app.event("app_mention")(clone_on_mention(services))
