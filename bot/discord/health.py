"""`/tts-health`: backend health, the bot's job statistics and the results kept undelivered, for admins only
(checked here, on the server).

`default_permissions(administrator=True)` only hides the command in Discord's client (server owners can change
that under Integrations); the check below runs on every invocation: Discord administrators and the ids in
VOICEBOT_ADMIN_USER_IDS pass, everyone else gets an ephemeral refusal.
"""

from __future__ import annotations

import asyncio
import dataclasses

import discord
from discord import app_commands

from bot.discord.calls import within
from bot.discord.identity import admins_only
from commands.clone import CloneService
from commands.health import BotHealth, health_fields

# Discord's caps: 25 fields per embed, 10 embeds per message, 1024 characters per field value.
FIELDS_PER_EMBED, MAX_EMBEDS, FIELD_MAX_CHARS = 25, 10, 1024


def health_embeds(health: BotHealth) -> list[discord.Embed]:
    """The report as embeds of up to 25 fields (several backend variants can exceed one embed)."""
    fields = health_fields(health)
    colour = discord.Colour.green() if health.ok else discord.Colour.red()
    title = "Voice clone health: " + ("all good" if health.ok else "problems")
    embeds = []
    for start in range(0, len(fields), FIELDS_PER_EMBED):
        embed = discord.Embed(title=title if start == 0 else None, colour=colour)
        for name, value in fields[start:start + FIELDS_PER_EMBED]:
            embed.add_field(name=name, value=value[:FIELD_MAX_CHARS] or "-", inline=len(value) <= 40)
        embeds.append(embed)
    return embeds[:MAX_EMBEDS] or [discord.Embed(title=title, colour=colour)]


def health_command(service: CloneService) -> app_commands.Command:
    async def tts_health(interaction: discord.Interaction) -> None:
        timing = interaction.client.timing  # type: ignore[attr-defined]
        # a cold Modal backend takes a while: defer first
        await within(timing.call_s, interaction.response.defer(ephemeral=True, thinking=True))
        health = await service.health()
        kept = await asyncio.to_thread(interaction.client.undelivered.entries)  # type: ignore[attr-defined]
        await within(timing.call_s, interaction.followup.send(
            embeds=health_embeds(dataclasses.replace(health, undelivered=kept)), ephemeral=True))

    command = app_commands.Command(name="tts-health", callback=tts_health,
                                   description="Backend health and bot statistics (admins only)")
    command.add_check(admins_only(service.settings))
    return app_commands.default_permissions(administrator=True)(command)
