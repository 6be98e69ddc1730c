"""`/say`: speak a text with a saved voice. `/say <voice>: <text>` starts at once (a voice name has no colon,
so the first one ends it); a bare `/say`, or text without a voice, opens the form with a voice picker.

The job then runs like `/clone`: a progress message in the channel, the WAV in its thread, failures privately.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.clone_flow import CloneOrder
from bot.slack.members import member_of
from bot.slack.modals import Origin, open_form
from bot.slack.replies import Replier
from bot.slack.say_flow import SayFlow
from bot.slack.services import SlackServices
from bot.slack.voice_forms import say_view


def say_command(services: SlackServices):
    async def answer_say_command(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient,
                                 respond: AsyncRespond) -> None:
        await ack()
        typed = (command.get("text") or "").strip()
        voice, colon, text = typed.partition(":")
        if colon and voice.strip() and text.strip():
            member = member_of(command)
            order = CloneOrder(user=member.user_id, team=member.workspace_id, channel=command["channel_id"],
                               thread_ts=None, file=None, text=text.strip(), voice=voice.strip())
            reply = Replier(client, order.channel, order.user, response_url=command.get("response_url"))
            services.spawn(SayFlow(services, client, order, reply).run(), name=f"slack-say-{order.user}")
            return
        origin = Origin(channel_id=command["channel_id"], response_url=command.get("response_url"))
        voice, text = (voice.strip(), text.strip()) if colon else ("", typed)  # the form, filled in with what came
        view = say_view(origin, services.settings, voice=voice or None, text=text or None)
        await open_form(services, client, respond, command["trigger_id"], view, "the say form")

    return answer_say_command
