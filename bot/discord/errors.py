"""Every failure becomes one specific ephemeral message; only the unexpected ones are logged as errors.

User-facing wording comes from the layer that knows the cause: `VoicebotError.message` (commands and backend),
or the few app-command failures discord.py raises itself (permissions, checks).
"""

from __future__ import annotations

import discord
import structlog
from discord import app_commands

from backend.errors import VoicebotError
from bot.discord.calls import CALL_FAILURES, describe_failure, within

log = structlog.get_logger(__name__)

UNEXPECTED = "Something went wrong on our side; the admins have the log."
ADMINS_ONLY = "This command is for server admins and the bot's configured admins."


class NotAdmin(app_commands.CheckFailure):
    """Raised by the server-side admin check (a check must raise an `AppCommandError` to reach the handler)."""

    def __init__(self, message: str = ADMINS_ONLY) -> None:
        super().__init__(message)
        self.message = message


async def send_ephemeral(interaction: discord.Interaction, message: str) -> None:
    """Answer only the invoking user: as the initial response if none was sent yet, else as a follow-up."""
    deadline = interaction.client.timing.call_s  # type: ignore[attr-defined]
    if interaction.response.is_done():
        await within(deadline, interaction.followup.send(message, ephemeral=True))
    else:
        await within(deadline, interaction.response.send_message(message, ephemeral=True))


def describe(error: BaseException) -> str | None:
    """The message for a failure we expect, or None for a bug (the caller logs it)."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, VoicebotError):
        return error.message
    if isinstance(error, NotAdmin):
        return error.message
    if isinstance(error, app_commands.MissingPermissions):
        return ADMINS_ONLY
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    return None


async def report(interaction: discord.Interaction, error: BaseException) -> None:
    """Tell the user what went wrong; log unexpected failures with the job id, when the interaction has one."""
    message = describe(error)
    if message is None:
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        log.error("discord.unexpected_error", job_id=interaction.extras.get("job_id"),
                  command=interaction.command.qualified_name if interaction.command else None,
                  user_id=interaction.user.id, exc_info=original)
        job_id = interaction.extras.get("job_id")
        message = f"Job {job_id} failed: {UNEXPECTED}" if job_id else UNEXPECTED
    try:
        await send_ephemeral(interaction, message)
    except CALL_FAILURES as exc:  # the interaction expired or was deleted: nobody left to tell
        log.warning("discord.error_not_delivered", reason=describe_failure(exc), error=message)


async def on_app_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """The command tree's error handler (checks, transformers and anything raised by a command)."""
    await report(interaction, error)
