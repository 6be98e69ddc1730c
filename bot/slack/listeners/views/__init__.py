"""Modal submissions: the clone form, the voice library's forms (save, say, rename) and /tts-check's form."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.slack.check_form import CHECK_VIEW
from bot.slack.listeners.views.check_modal import check_modal_submission
from bot.slack.listeners.views.clone_modal import clone_modal_submission
from bot.slack.listeners.views.rename_modal import rename_modal_submission
from bot.slack.listeners.views.save_modal import save_modal_submission
from bot.slack.listeners.views.say_modal import say_modal_submission
from bot.slack.modals import CLONE_VIEW
from bot.slack.services import SlackServices
from bot.slack.voice_forms import RENAME_VIEW, SAVE_VIEW, SAY_VIEW


def register(app: AsyncApp, services: SlackServices) -> None:
    app.view(CLONE_VIEW)(clone_modal_submission(services))
    app.view(SAVE_VIEW)(save_modal_submission(services))
    app.view(SAY_VIEW)(say_modal_submission(services))
    app.view(RENAME_VIEW)(rename_modal_submission(services))
    app.view(CHECK_VIEW)(check_modal_submission(services))
