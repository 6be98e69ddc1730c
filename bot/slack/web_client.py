"""The Slack clients every call goes through: a deadline per HTTP request and slack_sdk's own retry handlers.

slack_sdk retries nothing but connection errors by default. Slack answers 429 with `Retry-After` when a method's
rate tier is exceeded (per method and workspace; `chat.postMessage` per channel), and its file host or API
sometimes answers 500/503: both are transient, so the clients carry the library's handlers for them. The
handlers run inside slack_sdk's request loop for every Web API method and for the raw upload POST of
`files_upload_v2` (`_upload_file` passes the client's handlers), and Bolt copies them into the client it hands
each listener. They share one attempt counter per request, so a request is sent at most `MAX_RETRIES + 1` times.
What is still failing after that is the caller's to handle (`bot.slack.delivery` retries a whole upload).
"""

from __future__ import annotations

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.slack.settings import SLACK_API_URL

REQUEST_TIMEOUT_S = 30  # one HTTP request, the WAV upload POST included (slack_sdk takes whole seconds)
# 429s: Slack names the wait; a 30-user burst on one method clears within a few of its windows.
MAX_RETRIES = 4
SERVER_ERROR_RETRIES = 2  # 500/503, with slack_sdk's exponential backoff and jitter
CONNECTION_RETRIES = 2  # reset or refused connections


def retry_handlers() -> list[AsyncRetryHandler]:
    """Connection errors, 429 honouring Retry-After, 500/503: slack_sdk's handlers, bounded."""
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
        AsyncRateLimitErrorRetryHandler(max_retry_count=MAX_RETRIES),
        AsyncServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
    ]


def web_client(token: str, base_url: str = SLACK_API_URL) -> AsyncWebClient:
    """The bot's Web API client (`base_url` is changed only by tests: a local fake Slack)."""
    return AsyncWebClient(token=token, base_url=base_url, timeout=REQUEST_TIMEOUT_S, retry_handlers=retry_handlers())


def webhook_client(response_url: str) -> AsyncWebhookClient:
    """A client for one `response_url` (private answers to slash commands and shortcuts)."""
    return AsyncWebhookClient(response_url, timeout=REQUEST_TIMEOUT_S, retry_handlers=retry_handlers())
