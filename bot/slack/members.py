"""Who is asking: the `Member` a Slack request comes from, and whether they are an admin.

Slack shows every slash command to everyone in the workspace, so admin rights are decided here, on the server:
Slack's `users.info` (scope `users:read`) says whether the caller is a workspace admin or owner, and
`VOICEBOT_ADMIN_USER_IDS` adds the bot's own admins (`commands.health.is_admin`). Nothing the client sent counts.
"""

from __future__ import annotations

import re
from typing import Any

import structlog
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.services import SlackServices
from bot.slack.slack_errors import SlackProblem, explain
from commands.errors import PermissionDenied
from commands.health import is_admin
from commands.storage.voices import Member

log = structlog.get_logger(__name__)

PLATFORM = "slack"
# A user mention as Slack writes it in message and (escaped) command text: <@U0ABC> or <@U0ABC|name>.
USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def member_of(body: dict[str, Any]) -> Member:
    """The caller of a slash command (`team_id`, `user_id`) or of an interaction (`team`, `user`)."""
    user = body.get("user")
    if isinstance(user, dict):
        team = (body.get("team") or {}).get("id") or user.get("team_id") or ""
        return Member(PLATFORM, team, user["id"])
    return Member(PLATFORM, body.get("team_id") or "", body["user_id"])


async def workspace_admin(client: AsyncWebClient, user_id: str) -> tuple[bool, SlackProblem | None]:
    """Whether Slack says the user is a workspace admin or owner, and the problem if Slack would not say."""
    try:
        response = await client.users_info(user=user_id)
    except SlackClientError as exc:
        return False, explain(exc, "check whether you are a workspace admin")
    user = response.get("user") or {}
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")), None


async def admin_check(services: SlackServices, client: AsyncWebClient,
                      member: Member) -> tuple[bool, SlackProblem | None]:
    """Whether `member` is an admin (workspace admin/owner or a configured id), and the Slack problem that kept
    Slack from saying, if any (noted for /tts-health)."""
    platform_admin, problem = await workspace_admin(client, member.user_id)
    if problem is not None:
        services.note(problem, user=member.user_id)
    return is_admin(member.key, platform_admin, services.settings), problem


async def require_admin(services: SlackServices, client: AsyncWebClient, member: Member) -> None:
    """Raise `PermissionDenied` unless `member` is an admin; the Slack problem instead when Slack would not say
    (a missing `users:read` scope reads "missing a permission", not "you are not an admin")."""
    admin, problem = await admin_check(services, client, member)
    if not admin:
        log.info("slack.admin_denied", user=member.user_id, problem=problem.code if problem else None)
        raise problem or PermissionDenied("Only the bot's admins can use this command.")
