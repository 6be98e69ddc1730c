"""The bot's voice side: one `GuildPlayer` per guild (made when first needed, dropped when it leaves) and the
`/read` sessions running in each guild."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
import structlog

from bot.discord.playback.player import GuildPlayer

if TYPE_CHECKING:
    from bot.discord.read_aloud import ReadSession

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PlaybackSettings:
    """`voice_cls`: discord.py's voice protocol (its `VoiceClient`; tests put a fake at this boundary)."""

    voice_cls: type[discord.VoiceProtocol] = discord.VoiceClient
    idle_s: float = 120.0  # leave a voice channel after this long with nothing to play (no /read running)
    max_queued: int = 20  # speeches waiting per guild


class Playback:
    def __init__(self, settings: PlaybackSettings) -> None:
        self.settings = settings
        self._players: dict[int, GuildPlayer] = {}
        self._leaving: dict[int, asyncio.Task[object]] = {}  # guild id -> the task of a player disconnecting
        self.readings: dict[int, ReadSession] = {}  # guild id -> its /read session (one voice channel per guild)

    def player(self, guild: discord.Guild) -> GuildPlayer:
        player = self._players.get(guild.id)
        if player is None or player.leaving:
            player = GuildPlayer(guild, self.settings.voice_cls, idle_s=self.settings.idle_s,
                                 max_queued=self.settings.max_queued, stay=lambda: guild.id in self.readings,
                                 on_leave=self._forget, after=self._leaving.get(guild.id))
            self._players[guild.id] = player
        return player

    def _forget(self, player: GuildPlayer) -> None:
        """`player` is leaving (it disconnects next): the guild's next player waits for that."""
        if self._players.get(player.guild.id) is player:
            del self._players[player.guild.id]
        task = asyncio.current_task()
        if task is not None:
            self._leaving[player.guild.id] = task
            task.add_done_callback(lambda _: self._leaving.pop(player.guild.id, None)
                                   if self._leaving.get(player.guild.id) is task else None)
        log.info("playback.left", guild_id=player.guild.id)

    async def stop(self, guild_id: int) -> bool:
        """Stop and leave in one guild; False if the bot was not playing there."""
        player = self._players.get(guild_id)
        if player is None:
            return False
        await player.stop()
        return True

    async def forget(self, user_key: str) -> int:
        """Forget-me: stop every speech the user asked for or that speaks in their voice, in every guild, and
        end the `/read` sessions whose default voice is theirs; how many speeches were stopped."""
        for guild_id, session in list(self.readings.items()):
            if session.default is not None and session.default.voice is not None \
                    and session.default.voice.owner.key == user_key:
                del self.readings[guild_id]
                log.info("playback.reading_forgotten", guild_id=guild_id)
        return sum([await player.forget(user_key) for player in list(self._players.values())])

    async def close(self) -> None:
        """Stop every guild's playback and leave (the bot is shutting down)."""
        self.readings.clear()
        for guild_id in list(self._players):
            await self.stop(guild_id)
