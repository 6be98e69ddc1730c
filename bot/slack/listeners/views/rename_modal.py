"""The rename form was submitted: the voice is renamed if the member owns it (or, for an admin, if it is a
workspace voice); a bad or taken name goes back onto the form."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from backend.errors import VoicebotError
from bot.slack.blocks import read_value
from bot.slack.form_answer import ignore_replay, refused_on_form, remember_closed, tell_outcome
from bot.slack.members import admin_check, member_of
from bot.slack.messages import escape
from bot.slack.modals import VALUE_ACTION, Origin
from bot.slack.replies import Replier
from bot.slack.services import SlackServices
from bot.slack.voice_forms import NEW_NAME, VOICE, selected_voice
from commands.storage.voices import Member, Voice

NAME_ERRORS = frozenset({"bad_voice_name", "name_taken"})


async def rename(services: SlackServices, client: AsyncWebClient, member: Member, voice: str, new_name: str) -> Voice:
    admin, _ = await admin_check(services, client, member)
    return await services.library.rename(member, voice, new_name, is_admin=admin)


def rename_modal_submission(services: SlackServices):
    async def submit_rename_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                                 client: AsyncWebClient) -> None:
        if await ignore_replay(services, ack, view):
            return
        values: dict[str, Any] = view.get("state", {}).get("values", {})
        voice, new_name = selected_voice(values), read_value(values, NEW_NAME, VALUE_ACTION) or ""
        if not voice:
            await ack(response_action="errors", errors={VOICE: "Pick the voice to rename."})
            return
        member = member_of(body)
        work = asyncio.get_running_loop().create_task(rename(services, client, member, voice, new_name))

        def block_for(error: VoicebotError) -> str:
            return NEW_NAME if error.code in NAME_ERRORS else VOICE

        if await refused_on_form(services, ack, work, block_for, user=member.user_id):
            return
        await ack()
        remember_closed(services, view)
        origin = Origin.load(view.get("private_metadata"))
        reply = Replier(client, origin.channel_id, member.user_id, response_url=origin.response_url)

        def done(renamed: Voice) -> str:
            return f":pencil2: Renamed *{escape(voice)}* to *{escape(renamed.name)}*."

        services.spawn(tell_outcome(services, work, reply, done), name=f"slack-voice-rename-{member.user_id}")

    return submit_rename_form
