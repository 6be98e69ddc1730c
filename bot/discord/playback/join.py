"""Where the bot may speak: the caller's voice channel, and the bot's own rights there, checked before anything
is generated so the user hears exactly what is missing."""

from __future__ import annotations

import discord

from backend.errors import InvalidInput
from commands.errors import PermissionDenied

VoiceChannel = discord.VoiceChannel


class NotInVoice(InvalidInput):
    code = "not_in_voice"


class BotCannotSpeak(PermissionDenied):
    code = "bot_cannot_speak"


def callers_channel(interaction: discord.Interaction) -> VoiceChannel:
    """The voice channel the caller is in (as the gateway's voice states say)."""
    if interaction.guild is None:
        raise InvalidInput("Voice channels exist in servers only; run this in a server.", code="not_in_server")
    state = getattr(interaction.user, "voice", None)
    if state is None or state.channel is None:
        raise NotInVoice("Join a voice channel first, then run the command again: the bot speaks where you are.")
    if isinstance(state.channel, discord.StageChannel):  # the bot would join the audience, muted
        raise NotInVoice("The bot speaks in voice channels, not on stages: join a voice channel and try again.")
    return state.channel


def check_bot_can_speak(channel: VoiceChannel) -> None:
    """The bot's permissions in `channel`: View Channel and Connect to join, Speak to be heard, and room in a
    channel with a user limit (Move Members overrides the limit). Without Connect, Discord (and discord.py's
    `permissions_for`) deny every voice permission, so Speak is judged only once the bot may connect."""
    me = channel.guild.me
    rights = channel.permissions_for(me)
    joins = [("View Channel", rights.view_channel), ("Connect", rights.connect)]
    missing = [name for name, granted in joins if not granted] or (["Speak"] if not rights.speak else [])
    if missing:
        listed = " and ".join(missing)
        raise BotCannotSpeak(f"The bot lacks the {listed} permission{'s' if len(missing) > 1 else ''} in "
                             f"{channel.mention}. A server admin can grant {'them' if len(missing) > 1 else 'it'} in "
                             "the channel's settings (Permissions), then try again.")
    full = channel.user_limit and len(channel.voice_states) >= channel.user_limit
    if full and not rights.move_members and me.id not in channel.voice_states:
        raise BotCannotSpeak(f"{channel.mention} is full ({channel.user_limit} people), so the bot cannot join.")
