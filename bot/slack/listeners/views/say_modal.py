"""The say form was submitted: the text and language are checked on the spot, then the job is admitted within
Slack's 3 s (`bot.slack.form_answer`): an unknown voice, a block or a cooldown is shown on the form; otherwise
it closes and the job runs like a clone job (progress in the channel, the WAV in its thread)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from backend.errors import InvalidInput
from backend.languages import normalize_language
from backend.validation import check_text
from bot.slack.blocks import read_selected, read_value
from bot.slack.clone_flow import CloneOrder
from bot.slack.form_answer import ignore_replay, refused_on_form, remember_closed
from bot.slack.members import member_of
from bot.slack.modals import LANGUAGE, TEXT, VALUE_ACTION, Origin
from bot.slack.replies import Replier
from bot.slack.say_flow import SayFlow
from bot.slack.services import SlackServices
from bot.slack.voice_forms import VOICE, selected_voice


def say_modal_submission(services: SlackServices):
    async def submit_say_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                              client: AsyncWebClient) -> None:
        if await ignore_replay(services, ack, view):
            return
        values: dict[str, Any] = view.get("state", {}).get("values", {})
        origin = Origin.load(view.get("private_metadata"))
        voice, text = selected_voice(values), read_value(values, TEXT, VALUE_ACTION) or ""
        language = read_selected(values, LANGUAGE, VALUE_ACTION)
        errors: dict[str, str] = {}
        if not voice:
            errors[VOICE] = "Pick a voice."
        for block, check in ((TEXT, lambda: check_text(text, services.settings.max_text_chars)),
                             (LANGUAGE, lambda: normalize_language(language))):
            try:
                check()
            except InvalidInput as exc:
                errors[block] = exc.message
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        member = member_of(body)
        order = CloneOrder(user=member.user_id, team=member.workspace_id, channel=origin.channel_id,
                           thread_ts=origin.thread_ts, file=None, text=text, language=language, voice=voice)
        reply = Replier(client, origin.channel_id, member.user_id, response_url=origin.response_url,
                        thread_ts=origin.thread_ts)
        flow = SayFlow(services, client, order, reply)
        if await refused_on_form(services, ack, flow.admit(), lambda _: VOICE, user=member.user_id):
            return
        await ack()
        remember_closed(services, view)
        services.spawn(flow.run(), name=f"slack-say-{member.user_id}")

    return submit_say_form
