"""`/tts-health`: backend and bot health, the results kept undelivered and recent Slack problems, for workspace
admins/owners and the configured admin ids.

The check runs here, on the server (`bot.slack.members.admin_check`): Slack shows a slash command to everyone in
the workspace.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from backend.errors import VoicebotError
from bot.slack.members import member_of, require_admin
from bot.slack.messages import error_line, health_message
from bot.slack.services import SlackServices


def tts_health_command(services: SlackServices):
    async def tts_health(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient,
                         respond: AsyncRespond) -> None:
        await ack()
        try:
            await require_admin(services, client, member_of(command))
        except VoicebotError as exc:
            await respond(text=error_line(exc, ":no_entry:"), response_type="ephemeral")
            return
        health = await services.clone.health()
        kept = await asyncio.to_thread(services.undelivered.entries)
        health = dataclasses.replace(health, undelivered=kept)
        await respond(response_type="ephemeral", **health_message(health, services.problems()))

    return tts_health
