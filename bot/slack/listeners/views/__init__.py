"""Modal submissions: the clone form."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.views.clone_modal import clone_modal_submission
from bot.slack.modals import CLONE_VIEW
from bot.slack.services import SlackServices


def register(app: AsyncApp, services: SlackServices) -> None:
    app.view(CLONE_VIEW)(clone_modal_submission(services))
