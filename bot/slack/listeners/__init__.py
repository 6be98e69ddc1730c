"""Every Slack listener, grouped by the kind of request (the bolt-python starter template's layout)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners import actions, commands, events, options, shortcuts, views
from bot.slack.services import SlackServices


def register_listeners(app: AsyncApp, services: SlackServices) -> None:
    commands.register(app, services)
    views.register(app, services)
    actions.register(app, services)
    options.register(app, services)
    shortcuts.register(app, services)
    events.register(app, services)
