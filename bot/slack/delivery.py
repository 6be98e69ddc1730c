"""Handing a finished clone to its user: the thread, else a direct message, else kept on disk. Never dropped.

    route = await deliver(services, client, order, job, audio, thread_ts)   # Route.THREAD or Route.DM

`files_upload_v2` is three steps (`files.getUploadURLExternal`, a POST of the bytes to the URL it gave,
`files.completeUploadExternal`). slack_sdk's retry handlers retry each step on 429/500/503 and lost connections
(`bot.slack.web_client`); a step still failing for a transient reason (or the upload URL refusing the bytes)
gets the whole upload tried again with a fresh URL, at most `Pacing.upload_attempts` times (tenacity), and each
route has a deadline. When the channel refuses the upload (the bot was removed, a missing scope) the audio goes
to the user as a direct message (`conversations.open`, scope `im:write`). When that fails too, or delivery
crashes or is interrupted, the WAV is kept in `commands.undelivered.UndeliveredStore` (admins see it in
/tts-health) and `ResultUndelivered` tells the user the job id.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

from backend.errors import VoicebotError
from bot.slack.messages import result_comment
from bot.slack.pacing import Pacing
from bot.slack.replies import open_dm
from bot.slack.services import SlackServices
from bot.slack.slack_errors import explain, transient
from commands.jobs import Job
from commands.timing import excerpt, result_filename

if TYPE_CHECKING:
    from bot.slack.clone_flow import CloneOrder

log = structlog.get_logger(__name__)

# What a failed route may raise: Slack's errors, the upload POST's, a lost connection, the route's deadline.
ROUTE_ERRORS = (SlackClientError, aiohttp.ClientError, OSError, TimeoutError)


class Route(StrEnum):
    THREAD = "thread"
    DM = "direct message"


class ResultUndelivered(VoicebotError):
    """No route took the result; it is kept for the admins (or, if even the disk refused, logged)."""

    code = "undelivered"


def undelivered_message(job_id: str, kept: bool) -> str:
    if kept:
        return (f"Slack would not take the audio of job {job_id}, neither here nor as a direct message. "
                "It is kept for you: ask an admin for it with the job id.")
    return (f"Slack would not take the audio of job {job_id}, neither here nor as a direct message, and it "
            "could not be kept either; the admins have the log.")


async def upload(client: AsyncWebClient, pacing: Pacing, **args: Any) -> None:
    """`files_upload_v2`, the three steps tried again as a whole while the failure is transient."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning("slack.upload_retry", attempt=state.attempt_number, channel=args.get("channel"),
                    error=repr(error))

    retrying = AsyncRetrying(
        stop=stop_after_attempt(pacing.upload_attempts), wait=wait_exponential(multiplier=pacing.upload_retry_wait_s),
        retry=retry_if_exception(transient), reraise=True, before_sleep=before_sleep,
    )
    async for attempt in retrying:
        with attempt:
            await client.files_upload_v2(**args)


async def deliver(services: SlackServices, client: AsyncWebClient, order: CloneOrder, job: Job, audio: bytes,
                  thread_ts: str | None) -> Route:
    """Upload `audio` by the first route that takes it; raises `ResultUndelivered` once it is kept instead."""
    pacing = services.pacer.pacing
    file: dict[str, Any] = {"file": audio, "filename": result_filename(job.text),
                            "title": f"Voice clone: {excerpt(job.text, 60)}"}
    comment = result_comment(job, order.user, order.voice)
    failures: list[str] = []

    async def to_thread() -> None:
        await upload(client, pacing, channel=order.channel, thread_ts=thread_ts, initial_comment=comment, **file)

    async def to_dm() -> None:
        channel = await open_dm(client, order.user)
        note = f"\n_Voicebot could not post it in <#{order.channel}>, so it came here._"
        await upload(client, pacing, channel=channel, initial_comment=comment + note, **file)

    try:
        for route, send in ((Route.THREAD, to_thread), (Route.DM, to_dm)):
            try:
                async with asyncio.timeout(pacing.route_deadline_s):
                    await send()
                return route
            except ROUTE_ERRORS as exc:
                problem = explain(exc, "upload the audio")
                services.note(problem, user=order.user, channel=order.channel, job_id=job.id)
                failures.append(f"{route}: {problem.detail or problem.code}")
                log.warning("slack.route_failed", route=str(route), job_id=job.id, error=failures[-1])
    except BaseException as exc:  # a bug or the bot stopping: keep the audio, let the job fail as it would
        await keep(services, job, audio, f"delivery stopped: {type(exc).__name__}")
        raise
    kept = await keep(services, job, audio, "; ".join(failures))
    raise ResultUndelivered(undelivered_message(job.id, kept))


async def keep(services: SlackServices, job: Job, audio: bytes, reason: str) -> bool:
    """Store the result for the admins (blocking file I/O in a thread); False (and the log) if that failed."""
    try:
        await asyncio.to_thread(services.undelivered.keep, job.id, job.user_id, job.place, audio, reason)
    except OSError:
        log.exception("slack.result_lost", job_id=job.id, user_id=job.user_id, reason=reason)
        return False
    return True
