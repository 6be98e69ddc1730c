"""The public "queued #2 -> cloning -> generating -> done" (or "failed") message of one clone job.

Edits go through `commands.progress_coalescer.Coalescer` (one edit at a time, at least `edit_interval_s` apart,
the latest state wins, the final state always lands) and the workspace's edit budget (`bot.slack.pacing`), so
thirty jobs at once stay within Slack's Tier 3. An edit still refused after slack_sdk's retries is dropped (a
later one replaces it); only the final state's outcome matters, and `finish` reports it so the flow can tell the
user privately when the message could not show it.
"""

from __future__ import annotations

import asyncio

import structlog
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.messages import progress_text
from bot.slack.pacing import Pacer
from bot.slack.slack_errors import explain
from commands.jobs import Job
from commands.progress_coalescer import Coalescer

log = structlog.get_logger(__name__)


class ProgressMessage:
    def __init__(self, client: AsyncWebClient, pacer: Pacer, team: str, channel: str, thread_ts: str | None,
                 user: str) -> None:
        self.client = client
        self.pacer = pacer
        self.team = team
        self.channel = channel
        self.thread_ts = thread_ts
        self.user = user
        self.ts: str | None = None
        self._edits: Coalescer[str] | None = None

    async def start(self, job: Job) -> None:
        """Post the message (raises `SlackProblem` when Slack refuses: not in channel, missing scope)."""
        text = progress_text(job, self.user)
        try:
            async with self.pacer.posts(self.team, self.channel):
                response = await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts,
                                                              text=text)
        except SlackClientError as exc:
            raise explain(exc, "post the progress message in this channel") from exc
        self.ts = response["ts"]
        self._edits = Coalescer(self._edit, min_interval_s=self.pacer.pacing.edit_interval_s, shown=text,
                                sent_at=asyncio.get_running_loop().time())
        self.on_job(job)  # the job may have moved while the message was being posted

    def on_job(self, job: Job) -> None:
        """The job queue's progress callback; the outcome itself is shown by `finish`."""
        if self._edits is not None and not job.finished:
            self._edits.push(progress_text(job, self.user))

    async def finish(self, text: str) -> bool:
        """Show the final state; False when Slack would not take it (the flow then tells the user privately)."""
        if self._edits is None:
            return False
        return await self._edits.flush(text)

    async def _edit(self, text: str) -> None:
        async with self.pacer.edits(self.team):
            await self.client.chat_update(channel=self.channel, ts=self.ts, text=text)
