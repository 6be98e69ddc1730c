"""`/speak text [voice] [language]`: the bot joins the caller's voice channel and speaks the text while it is
generated, in a saved voice or the caller's last reference clip.

What can be refused without generating anything is answered at once, privately: the caller is not in a voice
channel, the bot lacks View Channel, Connect or Speak there (or the channel is full), a `/read` session holds the
bot in another voice channel of this server, no voice to speak with, the text, the cooldown. Then the private
answer says where the bot speaks (or how many speeches wait before this one) and, when the speech has played,
how long it was or why it stopped.
"""

# No `from __future__ import annotations`: discord.py reads option types from the callback's annotations.

import asyncio

import discord
import structlog
from discord import app_commands

from backend.errors import VoicebotError
from bot.discord.answers import defer_privately
from bot.discord.calls import CALL_FAILURES, describe_failure, within
from bot.discord.clone import OPTION_MAX_CHARS, complete_language
from bot.discord.errors import send_ephemeral
from bot.discord.identity import caller_is_admin, member_of
from bot.discord.playback.guilds import Playback
from bot.discord.playback.join import VoiceChannel, callers_channel, check_bot_can_speak
from bot.discord.playback.pcm_source import FRAME_MS
from bot.discord.playback.player import Utterance
from bot.discord.voice import Name, voice_completer
from commands.errors import PermissionDenied
from commands.speech import SpeechService

log = structlog.get_logger(__name__)


class ReadingElsewhere(PermissionDenied):
    code = "reading_elsewhere"


def check_not_reading_elsewhere(playback: Playback, channel: VoiceChannel) -> None:
    """A `/read` session keeps the bot in its voice channel: speech for another channel of the server waits
    for `/read stop` rather than pulling the bot away from the people it reads to."""
    session = playback.readings.get(channel.guild.id)
    if session is not None and session.voice_channel.id != channel.id:
        raise ReadingElsewhere(f"The bot is reading <#{session.text_channel_id}> aloud in "
                               f"{session.voice_channel.mention}. Join that channel, or stop the reading with "
                               "/read stop first.")


def outcome_text(utterance: Utterance, channel: VoiceChannel) -> str:
    outcome = utterance.outcome.result()
    if utterance.error is not None:
        return utterance.error.message
    seconds = utterance.source.frames * FRAME_MS / 1000
    if outcome == "stopped":
        return f"Stopped after {seconds:.1f} s in {channel.mention}."
    if outcome == "forgotten":
        return (f"Stopped after {seconds:.1f} s in {channel.mention}: someone this speech concerns asked the bot "
                "to forget them.")
    return f"Spoke {seconds:.1f} s in {channel.mention}."


def speak_command(speech: SpeechService, playback: Playback) -> app_commands.Command:
    settings = speech.settings
    max_chars = min(settings.max_text_chars, OPTION_MAX_CHARS)
    Text = app_commands.Range[str, 1, max_chars]

    async def speak(interaction: discord.Interaction, text: Text, voice: Name | None = None,
                    language: str | None = None) -> None:
        interaction.client.track(asyncio.current_task())  # type: ignore[attr-defined]
        try:
            channel = callers_channel(interaction)
            check_bot_can_speak(channel)
            check_not_reading_elsewhere(playback, channel)
        except VoicebotError as exc:
            await send_ephemeral(interaction, exc.message)
            return
        if not await defer_privately(interaction):
            return
        try:
            spoken = await speech.speak(member_of(interaction), text, voice, language,
                                        channel_id=str(interaction.channel_id),
                                        is_admin=caller_is_admin(interaction, settings))
            player = playback.player(channel.guild)
            ahead = player.waiting
            try:
                utterance = player.play(channel, spoken)
            except VoicebotError:
                await spoken.close("refused")
                raise
        except VoicebotError as exc:
            await _answer(interaction, exc.message)
            return
        await _answer(interaction, f"Speaking in {channel.mention}…" if not ahead
                      else f"Queued in {channel.mention}: {ahead} before yours.")
        await asyncio.wait([utterance.outcome])
        await _answer(interaction, outcome_text(utterance, channel))

    speak = app_commands.describe(
        text=f"What to say (up to {max_chars} characters; long texts are spoken sentence by sentence)",
        voice="A saved voice (yours first, then this server's); default: your last /clone clip",
        language="Language of the text (default: detect automatically)")(speak)
    speak = app_commands.autocomplete(voice=voice_completer(speech.library), language=complete_language)(speak) \
        if speech.library is not None else app_commands.autocomplete(language=complete_language)(speak)
    return app_commands.Command(name="speak", description="Speak a text in your voice channel while it is generated",
                                callback=app_commands.guild_only(speak))


async def _answer(interaction: discord.Interaction, content: str) -> None:
    timing = interaction.client.timing  # type: ignore[attr-defined]
    try:
        await within(timing.call_s, interaction.edit_original_response(
            content=content, allowed_mentions=discord.AllowedMentions.none()))
    except CALL_FAILURES as exc:
        log.warning("discord.answer_not_shown", reason=describe_failure(exc))
