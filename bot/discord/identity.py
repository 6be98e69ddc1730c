"""Who is asking, and where, in the commands layer's terms: a Discord interaction's member, queue key and place."""

from __future__ import annotations

from collections.abc import Callable

import discord

from bot.discord.errors import NotAdmin
from commands.errors import PermissionDenied
from commands.health import is_admin, require_admin
from commands.settings import CommandSettings
from commands.storage.voices import Member

PLATFORM = "discord"


def member_of(interaction: discord.Interaction) -> Member:
    """The invoking user in the guild the interaction came from ("" in a DM)."""
    return Member(PLATFORM, str(interaction.guild_id or ""), str(interaction.user.id))


def user_key(user: discord.abc.User) -> str:
    return f"{PLATFORM}:{user.id}"


def place_of(interaction: discord.Interaction) -> str:
    return f"{PLATFORM}:{interaction.guild_id or 'dm'}/{interaction.channel_id}"


def caller_is_admin(interaction: discord.Interaction, settings: CommandSettings) -> bool:
    """Server admins (as Discord reports them in this interaction, so checked on the server side) and the
    configured admin ids."""
    return is_admin(user_key(interaction.user), interaction.permissions.administrator, settings)


def admins_only(settings: CommandSettings) -> Callable[[discord.Interaction], bool]:
    """An app-command check run on the server for every invocation: Discord administrators and the configured
    admin ids pass. (`default_permissions` only hides a command in Discord's client, and server owners can
    change that under Integrations.)"""

    def check(interaction: discord.Interaction) -> bool:
        try:
            require_admin(user_key(interaction.user), interaction.permissions.administrator, settings)
        except PermissionDenied as exc:
            raise NotAdmin(exc.message) from None
        return True

    return check
