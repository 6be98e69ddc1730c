"""The /tts-check form was submitted: the clip is fetched and checked (`commands.watermark_check`, within the
check's own limits, `backend.watermark.CHECK_LIMITS`). Within Slack's 3 s the verdict replaces the form, or a
bad clip is shown on it; a slower check closes the form and the verdict arrives privately."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from backend.intake import check_size
from backend.schema import WatermarkCheck
from backend.watermark import CHECK_LIMITS
from bot.slack.check_form import result_view, verdict_message
from bot.slack.clip_fetch import fetch_clip
from bot.slack.form_answer import ignore_replay, refused_on_form, remember_closed, tell_outcome
from bot.slack.members import member_of
from bot.slack.modals import REFERENCE, Origin, read_file
from bot.slack.replies import Replier
from bot.slack.services import SlackServices
from commands.watermark_check import check_clip


async def check(services: SlackServices, client: AsyncWebClient,
                file: dict[str, Any]) -> tuple[WatermarkCheck, str | None]:
    async def size_ok(size: int | None) -> None:  # before downloading it
        if size is not None:
            check_size(size, CHECK_LIMITS)

    clip = await fetch_clip(services, client, file, size_ok, max_bytes=CHECK_LIMITS.max_bytes)
    return await check_clip(services.clone, clip.data, clip.filename), clip.filename


def check_modal_submission(services: SlackServices):
    async def submit_check_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any],
                                client: AsyncWebClient) -> None:
        if await ignore_replay(services, ack, view):
            return
        values: dict[str, Any] = view.get("state", {}).get("values", {})
        origin = Origin.load(view.get("private_metadata"))
        file = read_file(values, origin)
        if file is None:
            await ack(response_action="errors", errors={REFERENCE: "Attach the clip to check."})
            return
        user = member_of(body).user_id
        work = asyncio.get_running_loop().create_task(check(services, client, file), name="slack-tts-check")
        if await refused_on_form(services, ack, work, lambda _: REFERENCE, user=user):
            return
        remember_closed(services, view)
        if work.done():
            await ack(response_action="update", view=result_view(*work.result()))
            return
        await ack()
        reply = Replier(client, origin.channel_id, user, response_url=origin.response_url)
        services.spawn(tell_outcome(services, work, reply, lambda found: verdict_message(*found)),
                       name=f"slack-tts-check-{user}")

    return submit_check_form
