"""Buttons: the "Clone this voice" shortcut's choice (speak once, or save as a voice) and forget-me's."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.listeners.actions.forget_me import forget_me_button
from bot.slack.listeners.actions.shortcut_choice import chosen
from bot.slack.services import SlackServices
from bot.slack.voice_forms import CHOOSE_CLONE, CHOOSE_SAVE, FORGET_ME


def register(app: AsyncApp, services: SlackServices) -> None:
    app.action(CHOOSE_CLONE)(chosen(services))
    app.action(CHOOSE_SAVE)(chosen(services))
    app.action(FORGET_ME)(forget_me_button(services))
