"""`/read start [voice] [max_seconds] [say_names] [skip_bots] [only_in_voice]` and `/read stop`: the bot reads
the text channel's new messages aloud in the caller's voice channel, each in its author's saved voice (else the
session's `voice`), until stopped or until nobody is left in the voice channel.

One session per server (the bot has one voice connection per server): starting a second one is refused with
where the first one runs. Messages go to the backend as they arrive (the player queues their playback, bounded
per server), so messages of many people generate side by side. A message is skipped, silently, when its author
is a bot or a webhook (`skip_bots`), is not in the voice channel (`only_in_voice`), has no saved voice and the
session has no default voice, or is blocked from using voices; or when nothing in it is worth saying.
Needs the Message Content intent (`DISCORD_READ_ALOUD=1` asks for it).
"""

# No `from __future__ import annotations`: discord.py reads option types from the callbacks' annotations.

import asyncio
from dataclasses import dataclass, field

import discord
import structlog
from discord import app_commands

from backend.errors import VoicebotError
from bot.discord.answers import answer_privately
from bot.discord.errors import send_ephemeral
from bot.discord.identity import PLATFORM, caller_is_admin, member_of
from bot.discord.message_speech import author_name, message_text
from bot.discord.playback.guilds import Playback
from bot.discord.playback.join import VoiceChannel, callers_channel, check_bot_can_speak
from bot.discord.voice import Name, voice_completer
from commands.errors import PermissionDenied
from commands.read_aloud import DEFAULT_SECONDS, MAX_SECONDS, MIN_SECONDS, ReadSettings, voice_of, with_name
from commands.speech import Speaker, SpeechService
from commands.storage.voices import Member

log = structlog.get_logger(__name__)


class AlreadyReading(PermissionDenied):
    code = "already_reading"


@dataclass(eq=False)
class ReadSession:
    text_channel_id: int
    voice_channel: VoiceChannel
    starter: Member
    default: Speaker | None
    settings: ReadSettings
    last_author: int | None = None
    # messages queue their speech in the order they arrived (discord.py handles each event in its own task)
    order: asyncio.Lock = field(default_factory=asyncio.Lock)


def read_group(speech: SpeechService, playback: Playback) -> app_commands.Group:
    group = app_commands.Group(name="read", description="Read this text channel aloud in your voice channel",
                               guild_only=True)

    @group.command(name="start", description="Read new messages of this channel aloud, each in its author's voice")
    @app_commands.describe(
        voice="For authors without a saved voice (default: they are not read)",
        max_seconds=f"Longest speech per message, {MIN_SECONDS}-{MAX_SECONDS} s (default {DEFAULT_SECONDS})",
        say_names="Say “<name> said” when the author changes (default: on)",
        skip_bots="Skip messages of bots and webhooks (default: on)",
        only_in_voice="Read only authors who are in the voice channel (default: on)")
    async def start(interaction: discord.Interaction, voice: Name | None = None,
                    max_seconds: app_commands.Range[int, MIN_SECONDS, MAX_SECONDS] = DEFAULT_SECONDS,
                    say_names: bool = True, skip_bots: bool = True, only_in_voice: bool = True) -> None:
        try:
            channel = callers_channel(interaction)
            check_bot_can_speak(channel)
            _check_free(playback, channel.guild.id, interaction.channel_id)
        except VoicebotError as exc:
            await send_ephemeral(interaction, exc.message)
            return
        member = member_of(interaction)

        async def work() -> dict[str, str]:
            default = await speech.speaker(member, voice) if voice else None
            _check_free(playback, channel.guild.id, interaction.channel_id)  # another start may have won meanwhile
            settings = ReadSettings(max_seconds=max_seconds, say_names=say_names, skip_bots=skip_bots,
                                    require_in_voice=only_in_voice)
            playback.readings[channel.guild.id] = ReadSession(interaction.channel_id or 0, channel, member, default,
                                                              settings)
            try:
                await playback.player(channel.guild).join(channel)
            except VoicebotError:
                playback.readings.pop(channel.guild.id, None)
                raise
            log.info("read.started", guild_id=channel.guild.id, text_channel_id=interaction.channel_id,
                     voice_channel_id=channel.id, by=member.key)
            fallback = f"else the voice “{default.voice.name}”" if default and default.voice else \
                "else your last clip" if default else "others are not read"
            return {"content": f"Reading <#{interaction.channel_id}> aloud in {channel.mention}: each message in "
                               f"its author's saved voice ({fallback}), up to {max_seconds} s. /read stop ends it."}

        await answer_privately(interaction, work)

    @group.command(name="stop", description="Stop reading aloud and leave the voice channel")
    async def stop(interaction: discord.Interaction) -> None:
        async def work() -> dict[str, str]:
            session = playback.readings.get(interaction.guild_id or 0)
            if session is None:
                return {"content": "Nothing is being read aloud in this server."}
            in_channel = getattr(getattr(interaction.user, "voice", None), "channel", None)
            if member_of(interaction) != session.starter and not caller_is_admin(interaction, speech.settings) \
                    and (in_channel is None or in_channel.id != session.voice_channel.id):
                return {"content": f"Only the member who started the reading, someone in "
                                   f"{session.voice_channel.mention} or an admin can stop it."}
            playback.readings.pop(interaction.guild_id or 0, None)
            await playback.stop(interaction.guild_id or 0)
            log.info("read.stopped", guild_id=interaction.guild_id, by=member_of(interaction).key)
            return {"content": f"Stopped reading <#{session.text_channel_id}> aloud."}

        await answer_privately(interaction, work)

    if speech.library is not None:
        start.autocomplete("voice")(voice_completer(speech.library))
    return group


def _check_free(playback: Playback, guild_id: int, text_channel_id: int | None) -> None:
    session = playback.readings.get(guild_id)
    if session is None:
        return
    if session.text_channel_id == text_channel_id:
        raise AlreadyReading(f"This channel is already being read aloud in {session.voice_channel.mention}. "
                             "/read stop ends it.")
    raise AlreadyReading(f"The bot is already reading <#{session.text_channel_id}> aloud in "
                         f"{session.voice_channel.mention}; it reads one channel per server. /read stop ends it.")


async def read_message(speech: SpeechService, playback: Playback, message: discord.Message) -> None:
    """Read `message` aloud if a session covers its channel and its settings let it through; never raises."""
    if message.guild is None:
        return
    session = playback.readings.get(message.guild.id)
    if session is None or message.channel.id != session.text_channel_id:
        return
    author, settings = message.author, session.settings
    if author.id == message.guild.me.id or (settings.skip_bots and (author.bot or message.webhook_id)):
        return
    voice_state = getattr(author, "voice", None)
    if settings.require_in_voice and (voice_state is None or voice_state.channel is None
                                      or voice_state.channel.id != session.voice_channel.id):
        return
    text = message_text(message)
    if not text:
        return
    member = Member(PLATFORM, str(message.guild.id), str(author.id))
    async with session.order:
        await _read(speech, playback, session, message, member, text)


async def _read(speech: SpeechService, playback: Playback, session: ReadSession, message: discord.Message,
                member: Member, text: str) -> None:
    author, settings = message.author, session.settings
    try:
        speaker = await voice_of(speech.library, member, session.default)
        if speaker is None:
            log.debug("read.no_voice", user_id=member.key)
            return
        said = with_name(text, author_name(message), previous_author=str(session.last_author), author=str(author.id),
                         settings=settings)
        spoken = await speech.read(member, said, speaker, channel_id=str(message.channel.id),
                                   max_seconds=settings.max_seconds)
        session.last_author = author.id
        try:
            playback.player(message.guild).play(session.voice_channel, spoken, max_seconds=settings.max_seconds)
        except VoicebotError:
            await spoken.close("refused")
            raise
    except VoicebotError as exc:  # blocked, a clip gone, the queue full, the text: the message is not read
        log.info("read.skipped", message_id=message.id, user_id=member.key, reason=exc.code)
    except Exception:
        log.exception("read.crashed", message_id=message.id)


async def end_when_alone(playback: Playback, member: discord.Member, before: discord.VoiceState) -> None:
    """Someone left a voice channel: when it is the one a reading runs in and no person is left there (bots
    do not count), the reading ends and the bot leaves."""
    session = playback.readings.get(member.guild.id)
    left = before.channel
    if session is None or left is None or left.id != session.voice_channel.id:
        return
    if any(not present.bot for present in left.members):
        return
    playback.readings.pop(member.guild.id, None)
    await playback.stop(member.guild.id)
    log.info("read.ended_alone", guild_id=member.guild.id, voice_channel_id=left.id)
