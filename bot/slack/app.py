"""The Slack app: an `AsyncApp` (the commands layer is asyncio) with every listener registered.

Transport-neutral: `bot.slack.runner` connects it through Socket Mode or serves it over HTTP; tests dispatch
signed requests to it directly.
"""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.listeners import register_listeners
from bot.slack.services import SlackServices

log = structlog.get_logger(__name__)


def build_app(services: SlackServices, client: AsyncWebClient, signing_secret: str = "") -> AsyncApp:
    """`client` carries the bot token (and, in tests, the base URL of a fake Slack). Requests over HTTP are
    verified with `signing_secret`; Socket Mode needs none (the WebSocket is authenticated by the app token)."""
    app = AsyncApp(client=client, signing_secret=signing_secret, name="voicebot")
    register_listeners(app, services)

    @app.error
    async def log_listener_error(error: Exception, body: dict[str, Any]) -> None:
        log.error("slack.listener_failed", error=repr(error), request_type=body.get("type"), exc_info=error)

    return app
