"""The "Delete everything" button of `/voice forget-me` (after Slack's own confirmation dialog): the library
deletes everything it keeps about the member, and the question is replaced by what was deleted."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond

from backend.errors import VoicebotError
from bot.slack.members import member_of
from bot.slack.messages import error_line
from bot.slack.services import SlackServices
from bot.slack.voice_messages import forget_message


def forget_me_button(services: SlackServices):
    async def forget_member(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        member = member_of(body)
        await respond(text=":hourglass_flowing_sand: Forgetting you…", replace_original=True)
        try:
            report = await services.library.forget_me(member)
        except VoicebotError as exc:
            services.note(exc, user=member.user_id)
            await respond(text=f"{error_line(exc)} Nothing more was deleted; run `/voice forget-me` again.",
                          replace_original=True)
            return
        await respond(text=forget_message(report), replace_original=True)

    return forget_member
