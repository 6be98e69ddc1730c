"""The Slack app: an `AsyncApp` (the commands layer is asyncio) with every listener registered.

Transport-neutral: `bot.slack.runner` connects it through Socket Mode or serves it over HTTP (`http_mode`);
tests dispatch signed requests to it directly. After Bolt's own checks (signature, authorization) every request
passes `once_per_request`: an event is identified by its `event_id`, anything a user did (a slash command, a
shortcut, a form submission) by its `trigger_id`, and one seen before is acknowledged and not handled again —
Slack re-delivers events it thinks were lost, and a signed request replayed within its 5-minute window must
not start a second job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.listeners import register_listeners
from bot.slack.services import SlackServices

log = structlog.get_logger(__name__)


def request_key(body: dict[str, Any]) -> str | None:
    """What identifies one delivery of a request: the event id, or the trigger id of a user's action."""
    if body.get("type") == "event_callback" and body.get("event_id"):
        return f"event:{body['event_id']}"
    if body.get("trigger_id"):
        return f"trigger:{body['trigger_id']}"
    return None


def build_app(services: SlackServices, client: AsyncWebClient, signing_secret: str = "") -> AsyncApp:
    """`client` carries the bot token (and, in tests, the base URL of a fake Slack). Requests over HTTP are
    verified with `signing_secret`; Socket Mode needs none (the WebSocket is authenticated by the app token)."""
    app = AsyncApp(client=client, signing_secret=signing_secret, name="voicebot")

    @app.middleware
    async def once_per_request(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        key = request_key(body)
        if key is None or services.first_time(key):
            await next()
            return None
        log.info("slack.duplicate_ignored", key=key)
        return BoltResponse(status=200, body="")

    register_listeners(app, services)

    @app.error
    async def log_listener_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("slack.listener_failed", error=repr(error), request_type=body.get("type"), exc_info=error)

    return app
