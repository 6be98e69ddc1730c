"""The clone form was submitted: problems go back onto the form, otherwise it closes and the job runs.

Every field is checked first; then `bot.slack.form_answer` waits (within Slack's 3 s) for the clip to be
downloaded and the job admitted (`CloneService.submit` decodes and checks the clip): a bad clip, a cooldown or a
full queue is shown on the form, which stays open. A slower download closes the form and the outcome arrives as
a private message.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.clone_flow import CloneFlow, CloneOrder
from bot.slack.form_answer import ignore_replay, refused_on_form, remember_closed
from bot.slack.modals import form_errors, read_form
from bot.slack.replies import Replier
from bot.slack.services import SlackServices


def clone_modal_submission(services: SlackServices):
    async def submit_clone_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                                client: AsyncWebClient) -> None:
        if await ignore_replay(services, ack, view):
            return
        form = read_form(view)
        if errors := form_errors(form, services.settings):
            await ack(response_action="errors", errors=errors)
            return
        assert form.file is not None
        user = body["user"]["id"]
        origin = form.origin
        order = CloneOrder(
            user=user, team=(body.get("team") or {}).get("id") or body["user"].get("team_id", ""),
            channel=origin.channel_id, thread_ts=origin.thread_ts, file=form.file, text=form.text,
            ref_text=form.ref_text, language=form.language, variant=form.variant,
        )
        reply = Replier(client, origin.channel_id, user, response_url=origin.response_url,
                        thread_ts=origin.thread_ts)
        flow = CloneFlow(services, client, order, reply)
        if await refused_on_form(services, ack, flow.admit(), lambda _: form.clip_block, user=user):
            return
        await ack()  # the form closes; the flow goes on without the user watching the form
        remember_closed(services, view)
        services.spawn(flow.run(), name=f"slack-clone-{user}")

    return submit_clone_form
