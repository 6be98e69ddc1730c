"""`/clone`: acknowledge at once, then open the clone form (a slash command cannot carry a file)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from backend.errors import VoicebotError
from bot.slack.members import member_of
from bot.slack.messages import error_line
from bot.slack.modals import Origin, open_clone_form
from bot.slack.services import SlackServices
from commands.errors import Cooldown
from commands.health import is_admin


def clone_command(services: SlackServices):
    async def answer_clone_command(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient,
                                   respond: AsyncRespond) -> None:
        await ack()
        user_key = member_of(command).key
        try:  # no form to fill in when the job would be refused anyway (a cooldown may be over by the submit)
            admin = is_admin(user_key, False, services.settings)
            await services.clone.queue.check_admission(user_key, is_admin=admin)
        except Cooldown:
            pass
        except VoicebotError as exc:
            await respond(text=error_line(exc), response_type="ephemeral")
            return
        origin = Origin(channel_id=command["channel_id"], response_url=command.get("response_url"))
        await open_clone_form(services, client, respond, command["trigger_id"], origin)

    return answer_clone_command
