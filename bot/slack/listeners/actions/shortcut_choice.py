"""A button of the "Clone this voice" choice: the modal turns into the clone form or the save form, both with
the message's clip already in them (`views.update` of the open modal, guarded by its hash so a double click
cannot replace a form the user is already filling in)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.members import member_of
from bot.slack.messages import error_line
from bot.slack.modals import Origin, clone_view
from bot.slack.replies import Replier
from bot.slack.services import SlackServices
from bot.slack.slack_errors import explain
from bot.slack.voice_forms import CHOOSE_SAVE, save_view


def chosen(services: SlackServices):
    async def show_chosen_form(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any],
                               client: AsyncWebClient) -> None:
        await ack()
        view = body.get("view") or {}
        origin = Origin.load(view.get("private_metadata"))
        if action.get("action_id") == CHOOSE_SAVE:
            form = save_view(origin, services.settings, services.library.CONSENT_STATEMENT)
        else:
            form = clone_view(origin, services.settings, services.clone.variant_names)
        try:
            await client.views_update(view_id=view["id"], hash=view.get("hash"), view=form)
        except SlackClientError as exc:
            problem = explain(exc, "open the form")
            if problem.code == "hash_conflict":  # a second click: the first one's form is already showing
                return
            user = member_of(body).user_id
            services.note(problem, user=user)
            await Replier(client, origin.channel_id, user, response_url=origin.response_url).ephemeral(
                error_line(problem))

    return show_chosen_form
