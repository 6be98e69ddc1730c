"""A private answer that may take longer than Discord's 3 s window: acknowledge first ("thinking", only the user
sees it), then replace the placeholder with the outcome, or with the failure's own message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord
import structlog

from backend.errors import VoicebotError
from bot.discord.calls import CALL_FAILURES, describe_failure, within
from bot.discord.errors import UNEXPECTED

log = structlog.get_logger(__name__)

Answer = Callable[[], Awaitable[dict[str, Any]]]


async def defer_privately(interaction: discord.Interaction) -> bool:
    """Acknowledge within Discord's 3 s, privately ("thinking"); False (logged) if Discord did not take it."""
    timing = interaction.client.timing  # type: ignore[attr-defined]
    try:
        await within(timing.call_s, interaction.response.defer(ephemeral=True, thinking=True))
    except CALL_FAILURES as exc:
        log.warning("discord.defer_failed", reason=describe_failure(exc), user_id=interaction.user.id)
        return False
    return True


async def answer_privately(interaction: discord.Interaction, work: Answer) -> None:
    """Acknowledge privately, run `work`, then show what it returns (`content`/`embed`/`view`) or its error."""
    if not await defer_privately(interaction):
        return
    try:
        message = await work()
    except VoicebotError as exc:
        message = {"content": exc.message}
    except Exception:
        log.exception("discord.command_crashed", user_id=interaction.user.id,
                      command=interaction.command.qualified_name if interaction.command else None)
        message = {"content": UNEXPECTED}
    try:
        await within(interaction.client.timing.call_s, interaction.edit_original_response(  # type: ignore[attr-defined]
            allowed_mentions=discord.AllowedMentions.none(), **message))
    except CALL_FAILURES as exc:
        log.warning("discord.answer_not_shown", reason=describe_failure(exc))
