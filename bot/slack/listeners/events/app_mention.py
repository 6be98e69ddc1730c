"""`@voicebot <text>` with an audio file attached: the file is the reference clip, the text is spoken, the
result goes into the message's thread. Language is detected (Auto); `/clone` offers the choice."""

from __future__ import annotations

import html
import re
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.clone_flow import CloneFlow, CloneOrder
from bot.slack.files import find_audio
from bot.slack.members import USER_MENTION
from bot.slack.messages import MENTION_HELP
from bot.slack.replies import Replier
from bot.slack.services import SlackServices

_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def spoken_text(slack_text: str) -> str:
    """The message as plain text without mentions (a user id cannot be spoken): `<url|label>` -> label,
    `&amp;` -> `&`."""
    text = USER_MENTION.sub("", slack_text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1).lstrip("#!@"), text)
    return " ".join(html.unescape(text).split())


async def answer(services: SlackServices, client: AsyncWebClient, event: dict[str, Any], team: str) -> None:
    channel, user = event["channel"], event.get("user", "")
    thread = event.get("thread_ts") or event["ts"]
    reply = Replier(client, channel, user, thread_ts=thread)
    text = spoken_text(event.get("text", ""))
    audio = await find_audio(client, event.get("files"))
    if audio is None or not text:
        await reply.ephemeral(MENTION_HELP)
        return
    order = CloneOrder(user=user, team=team, channel=channel, thread_ts=thread, file=audio, text=text)
    await CloneFlow(services, client, order, reply).run()


def clone_on_mention(services: SlackServices):
    async def clone_from_mention(event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        user = event.get("user", "")  # a re-delivered event never gets here (`app.once_per_request`)
        services.spawn(answer(services, client, event, body.get("team_id") or event.get("team", "")),
                       name=f"slack-mention-{user}")

    return clone_from_mention
