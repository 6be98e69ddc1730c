"""`/tts-health`: backend and bot health, the results kept undelivered and recent Slack problems, for workspace
admins/owners and the configured admin ids.

The check runs here, on the server: Slack shows a slash command to everyone in the workspace. Whether the
caller is an admin comes from `users.info` (scope `users:read`), never from anything the client sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import structlog
from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.messages import health_message, user_text
from bot.slack.services import SlackServices
from bot.slack.slack_errors import SlackProblem, explain
from commands.errors import PermissionDenied
from commands.health import require_admin

log = structlog.get_logger(__name__)


async def workspace_admin(client: AsyncWebClient, user_id: str) -> tuple[bool, SlackProblem | None]:
    """Whether Slack says the user is a workspace admin or owner, and the problem if Slack would not say."""
    try:
        response = await client.users_info(user=user_id)
    except SlackClientError as exc:
        return False, explain(exc, "check whether you are a workspace admin")
    user = response.get("user") or {}
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")), None


def tts_health_command(services: SlackServices):
    async def tts_health(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient,
                         respond: AsyncRespond) -> None:
        await ack()
        user_id = command["user_id"]
        platform_admin, problem = await workspace_admin(client, user_id)
        if problem is not None:
            services.note(problem, user=user_id)
        try:
            require_admin(f"slack:{user_id}", platform_admin, services.settings)
        except PermissionDenied as exc:
            log.info("slack.health_denied", user=user_id, problem=problem.code if problem else None)
            await respond(text=f":no_entry: {user_text(problem or exc)}", response_type="ephemeral")
            return
        health = await services.clone.health()
        kept = await asyncio.to_thread(services.undelivered.entries)
        health = dataclasses.replace(health, undelivered=kept)
        await respond(response_type="ephemeral", **health_message(health, services.problems()))

    return tts_health
