"""The clone form was submitted: problems go back onto the form, otherwise it closes and the job runs.

Within Slack's 3 s window the listener checks every field, then waits up to `services.ack_budget_s` for the clip
to be downloaded and the job to be admitted (`CloneService.submit` decodes and checks the clip): a bad clip, a
cooldown or a full queue is then shown on the form, which stays open. A slower download closes the form and the
outcome arrives as a private message. A form that closed is remembered by its view id, so a replayed
submission of it is acknowledged and ignored. The listener acknowledges and then carries on (an `AsyncApp` in a
long-running process; lazy listeners are for FaaS), so there is one code path and nothing is validated twice.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from backend.errors import VoicebotError
from bot.slack.clone_flow import CloneFlow, CloneOrder
from bot.slack.messages import UNEXPECTED, user_text
from bot.slack.modals import form_errors, read_form
from bot.slack.replies import Replier
from bot.slack.services import SlackServices

log = structlog.get_logger(__name__)


def clone_modal_submission(services: SlackServices):
    async def submit_clone_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                                client: AsyncWebClient) -> None:
        closed = f"view:{view['id']}" if view.get("id") else None  # Slack gives every view an id
        if closed is not None and services.seen(closed):
            log.info("slack.view_replay_ignored", view_id=view.get("id"))
            await ack()
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
        admission = flow.admit()
        await asyncio.wait({admission}, timeout=services.ack_budget_s)
        refused = admission.exception() if admission.done() else None
        if isinstance(refused, VoicebotError):  # a bad clip, a cooldown, a full queue, Slack refusing the file
            flow.note(refused)
            await ack(response_action="errors", errors={form.clip_block: user_text(refused)})
            return
        if refused is not None:
            log.error("slack.admission_failed", user=user, exc_info=refused)
            await ack(response_action="errors", errors={form.clip_block: UNEXPECTED})
            return
        await ack()  # the form closes; the flow goes on without the user watching the form
        if closed is not None:
            services.first_time(closed)
        services.spawn(flow.run(), name=f"slack-clone-{user}")

    return submit_clone_form
