"""`/tts-check`: opens a form for the clip (a slash command cannot carry a file); the verdict appears in the form
(`bot.slack.listeners.views.check_modal`)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.check_form import check_view
from bot.slack.modals import Origin, open_form
from bot.slack.services import SlackServices


def tts_check_command(services: SlackServices):
    async def answer_tts_check_command(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient,
                                       respond: AsyncRespond) -> None:
        await ack()
        origin = Origin(channel_id=command["channel_id"], response_url=command.get("response_url"))
        await open_form(services, client, respond, command["trigger_id"], check_view(origin),
                        "the check form")

    return answer_tts_check_command
