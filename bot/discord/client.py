"""The Discord client: owns the command tree, syncs it, tracks running job flows and shuts down gracefully.

Slash commands, message menus and modals arrive as interactions, which carry everything the clone and voice
library commands need (the attachment, the target message, the member's permissions): without voice playback
the bot asks for no intents at all. With voice playback (`/speak`) it asks for Guilds and Voice States (who is
in which voice channel, the bot's rights there; neither is privileged); with read-aloud (`/read`) also for
Guild Messages and the privileged Message Content intent, which must be switched on in the Developer Portal.
"""

from __future__ import annotations

import asyncio

import discord
import structlog
from discord import app_commands

from bot.discord.attachments import DiscordCdn
from bot.discord.calls import DiscordTiming
from bot.discord.check import check_command
from bot.discord.clone import clone_command, clone_menu
from bot.discord.errors import on_app_command_error
from bot.discord.health import health_command
from bot.discord.playback.guilds import Playback, PlaybackSettings
from bot.discord.read_aloud import end_when_alone, read_group, read_message
from bot.discord.speak import speak_command
from bot.discord.voice import say_command, voice_group
from bot.settings import DiscordSettings
from commands.clone import CloneService
from commands.jobs import DrainReport
from commands.speech import SpeechService
from commands.undelivered import UndeliveredStore
from commands.voice_library import VoiceLibrary

log = structlog.get_logger(__name__)


class VoicebotClient(discord.Client):
    def __init__(self, service: CloneService, settings: DiscordSettings | None = None, *,
                 library: VoiceLibrary | None = None, sync_global: bool = False, cdn: DiscordCdn | None = None,
                 timing: DiscordTiming | None = None, undelivered: UndeliveredStore | None = None,
                 voice: PlaybackSettings | None = None, read_aloud: bool = False, **options: object) -> None:
        """`library`: the voice library (`/voice`, `/say`, "save as a voice" and the audit trail); without one
        the bot offers one-off clones only. `cdn` says where reference clips may be downloaded from: Discord's
        CDN hosts over HTTPS unless a test points it at its fake. `timing`: deadlines and the progress edit
        interval. `undelivered` keeps the results no route could deliver (default: under the data directory,
        `VOICEBOT_DATA_DIR`). `voice`: play speech into voice channels (`/speak`; None when libopus is
        missing); `read_aloud`: also `/read` (needs `voice` and the library)."""
        self.timing = timing or DiscordTiming()
        read_aloud = read_aloud and voice is not None and library is not None
        intents = discord.Intents.none()
        if voice is not None:
            intents.guilds = intents.voice_states = True
        if read_aloud:
            intents.guild_messages = intents.message_content = True
        # Nothing the bot posts pings anyone unless a call says so (the result's channel message pings its user):
        # names and texts in messages are user input, and may hold @everyone or role mentions.
        super().__init__(intents=intents,  # type: ignore[arg-type]
                         max_ratelimit_timeout=self.timing.max_ratelimit_wait_s,
                         allowed_mentions=discord.AllowedMentions.none(), **options)
        self.service = service
        self.library = library
        self.settings = settings or DiscordSettings()
        self.sync_global = sync_global
        self.cdn = cdn or DiscordCdn()
        self.undelivered = undelivered or UndeliveredStore(service.settings.undelivered_dir)
        self.tree = app_commands.CommandTree(self)
        self.tree.error(on_app_command_error)
        commands: list[app_commands.Command | app_commands.ContextMenu | app_commands.Group] = [
            clone_command(service), clone_menu(service, library), health_command(service), check_command(service)]
        if library is not None:
            commands += [voice_group(library), say_command(service, library)]
        self.speech = SpeechService(service, library)
        self.playback = Playback(voice) if voice is not None else None
        self.read_aloud = read_aloud
        if self.playback is not None:
            commands.append(speak_command(self.speech, self.playback))
            if read_aloud:
                commands.append(read_group(self.speech, self.playback))
        for command in commands:
            self.tree.add_command(command)
        self._flows: set[asyncio.Task[object]] = set()

    def track(self, task: asyncio.Task[object] | None) -> None:
        """Remember a running clone flow, so shutdown can wait for it to tell its user the outcome."""
        if task is not None:
            self._flows.add(task)
            task.add_done_callback(self._flows.discard)

    async def wait_for_flows(self, timeout: float) -> bool:
        """Wait until every tracked clone flow has answered its user; False if some still run at the timeout."""
        if self._flows:
            _, pending = await asyncio.wait(set(self._flows), timeout=timeout)
            return not pending
        return True

    async def setup_hook(self) -> None:
        """Runs once at login: sync to the dev guild (instant), and globally when asked (up to an hour to show)."""
        if self.settings.dev_guild_id is not None:
            guild = discord.Object(self.settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("discord.commands_synced", scope="guild", guild_id=guild.id, commands=[c.name for c in synced])
        if self.sync_global:
            synced = await self.tree.sync()
            log.info("discord.commands_synced", scope="global", commands=[c.name for c in synced])
        if self.settings.dev_guild_id is None and not self.sync_global:
            log.info("discord.commands_not_synced",
                     hint="set DISCORD_DEV_GUILD_ID for an instant guild sync, or run `voicebot discord --sync` once")

    async def on_message(self, message: discord.Message) -> None:
        """Read-aloud sessions hear every new message of their channel (dispatched only with the intent)."""
        if self.read_aloud and self.playback is not None:
            await read_message(self.speech, self.playback, message)

    async def on_voice_state_update(self, member: discord.Member, before: discord.VoiceState,
                                    after: discord.VoiceState) -> None:
        """A reading ends when its voice channel has nobody left to hear it."""
        if self.playback is not None:
            await end_when_alone(self.playback, member, before)

    async def on_ready(self) -> None:
        log.info("discord.ready", user=str(self.user), guilds=len(self.guilds))

    async def shutdown(self, grace_s: float = 60.0) -> DrainReport:
        """Stop taking jobs, let running ones finish and post (up to `grace_s`), tell queued users, then close."""
        log.info("discord.shutting_down", grace_s=grace_s, running=self.service.queue.running,
                 queued=self.service.queue.queued)
        if self.playback is not None:  # speech in voice channels stops; its users hear that it was stopped
            await self.playback.close()
        report = await self.service.queue.drain(timeout=grace_s)
        await self.wait_for_flows(10.0)  # flows of drained jobs still post "the bot is restarting" to their users
        await self.close()
        return report
