"""Answering one user privately, wherever the request came from.

A slash command or shortcut brings a `response_url`, which works even where the bot is not a channel member;
otherwise `chat.postEphemeral` (the bot must be in the channel, which it is when it was mentioned there); when
neither takes the message, a direct message (`conversations.open`, scope `im:write`): a user whose job failed
must hear why, with its job id, even when the channel refuses the bot.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.web_client import webhook_client

log = structlog.get_logger(__name__)


async def open_dm(client: AsyncWebClient, user: str) -> str:
    """The id of the bot's direct-message channel with `user` (raises `SlackClientError`)."""
    response = await client.conversations_open(users=user)
    return str(response["channel"]["id"])


@dataclass
class Replier:
    client: AsyncWebClient
    channel: str
    user: str
    response_url: str | None = None
    thread_ts: str | None = None

    async def ephemeral(self, text: str) -> bool:
        """Show `text` to the user only; False (and a log line) when Slack took it nowhere."""
        if self.response_url:
            try:
                response = await webhook_client(self.response_url).send(
                    text=text, response_type="ephemeral", replace_original=False)
                if response.status_code == 200:
                    return True
                log.warning("slack.response_url_failed", status=response.status_code, body=response.body[:200])
            except Exception as exc:  # an expired or unreachable response_url: try the Web API instead
                log.warning("slack.response_url_failed", error=repr(exc))
        try:
            await self.client.chat_postEphemeral(channel=self.channel, user=self.user, text=text,
                                                 thread_ts=self.thread_ts)
            return True
        except SlackClientError as exc:
            log.warning("slack.ephemeral_failed", channel=self.channel, user=self.user, error=str(exc))
        try:
            await self.client.chat_postMessage(channel=await open_dm(self.client, self.user), text=text)
            return True
        except SlackClientError as exc:
            log.warning("slack.direct_message_failed", user=self.user, error=str(exc), text=text)
            return False
