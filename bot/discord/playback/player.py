"""One guild's voice connection and its playback queue: speech plays in the order it was asked for, one at a time.

Discord allows a bot one voice connection per guild, so every `/speak` and every message read aloud in a guild
goes through that guild's `GuildPlayer`. Generation starts when an utterance is queued, not when its turn
comes: its chunks are fed into its `StreamedPcm` source as they arrive (a task per utterance), so messages
that arrive together generate together (they batch in the backend) and each is ready, or streaming, when the
one before it has played. The queue is bounded (`max_queued`); past it `PlaybackFull` is raised at once.

The player joins (or moves to) the utterance's voice channel when its turn comes, hands the source to the
voice connection once its first chunk is there (so no silence is sent while the backend starts), waits for
discord.py's `after` callback, and then closes the speech (which audits it). It leaves the channel after
`idle_s` with nothing to play unless `stay()` says otherwise (a `/read` session keeps it there).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord
import structlog

from backend.errors import VoicebotError
from bot.discord.playback.join import VoiceChannel
from bot.discord.playback.pcm_source import StreamedPcm

if TYPE_CHECKING:
    from commands.speech import Speech

log = structlog.get_logger(__name__)

CONNECT_TIMEOUT_S = 20.0
UNEXPECTED = "The speech stopped because of an error on our side; the admins have the log."


class PlaybackFull(VoicebotError):
    code = "playback_full"


class VoiceUnavailable(VoicebotError):
    """The bot could not join the voice channel (Discord's voice servers did not answer, or it was moved out)."""

    code = "voice_unavailable"


@dataclass(eq=False)
class Utterance:
    """One speech in a guild's queue. `outcome` resolves when it has played (or failed, or was stopped) with
    "done", "stopped", "forgotten" (forget-me of its requester or of its voice's owner), "cut" (past its
    `max_seconds`) or the failure's code; `error` holds a failure's message."""

    speech: Speech
    channel: VoiceChannel
    source: StreamedPcm
    outcome: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    error: VoicebotError | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)  # the first chunk (or the end) arrived
    feeder: asyncio.Task[None] | None = None
    stopped: str = ""  # why it was stopped while playing ("stopped", "forgotten"), "" while it was not

    async def feed(self) -> None:
        """The speech's chunks into the source as they are generated (on the event loop)."""
        try:
            async for chunk in self.speech:
                if self.source.finished:  # played out to its limit, or stopped
                    break
                self.source.feed(chunk)
                self.started.set()
        except VoicebotError as exc:
            self.error = exc
        except Exception as exc:
            log.exception("playback.feed_crashed", speech_id=self.speech.id)
            self.error = VoicebotError(UNEXPECTED, code="unexpected", detail=repr(exc))
        finally:
            self.source.end()
            self.started.set()

    async def finish(self, outcome: str) -> None:
        """Stop feeding, close the speech (audited with `outcome` or its failure) and resolve `outcome`."""
        if self.feeder is not None and not self.feeder.done():
            self.feeder.cancel()
            await asyncio.wait([self.feeder])
        self.source.cleanup()
        if self.error is not None:
            outcome = self.error.code
        await self.speech.close(None if outcome == "done" else outcome)
        if not self.outcome.done():
            self.outcome.set_result(outcome)


class GuildPlayer:
    """The playback queue of one guild. It connects with discord.py's `VoiceChannel.connect(cls=voice_cls)`.
    `after`: the task of the guild's previous player, still leaving: this one connects once that is done, so
    it never plays into a connection being closed."""

    def __init__(self, guild: discord.Guild, voice_cls: type[discord.VoiceProtocol], *, idle_s: float,
                 max_queued: int, stay: Callable[[], bool] = lambda: False,
                 on_leave: Callable[[GuildPlayer], None] = lambda player: None,
                 after: asyncio.Task[None] | None = None) -> None:
        self.guild = guild
        self._after = after
        self._voice_cls = voice_cls
        self._idle_s = idle_s
        self._max_queued = max_queued
        self._stay = stay
        self._on_leave = on_leave
        self._queue: deque[Utterance] = deque()
        self._wake = asyncio.Event()
        self._current: Utterance | None = None
        self._task: asyncio.Task[None] | None = None
        self.leaving = False  # stopped or idle: the next speech needs a new player

    @property
    def voice(self) -> discord.VoiceProtocol | None:
        return self.guild.voice_client

    @property
    def waiting(self) -> int:
        """Speeches before one queued now: the one playing and those waiting."""
        return len(self._queue) + (self._current is not None)

    def play(self, channel: VoiceChannel, speech: Speech, *, max_seconds: float | None = None) -> Utterance:
        """Queue `speech` for `channel` and start generating it now; `PlaybackFull` when too many wait."""
        if len(self._queue) >= self._max_queued:
            raise PlaybackFull(f"{len(self._queue)} speeches are already waiting in this server; try again when "
                               "they have played.")
        utterance = Utterance(speech, channel, StreamedPcm(max_seconds=max_seconds))
        utterance.feeder = asyncio.get_running_loop().create_task(utterance.feed(), name=f"feed-{speech.id}")
        self._queue.append(utterance)
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"voice-{self.guild.id}")
        return utterance

    async def join(self, channel: VoiceChannel) -> None:
        """Join `channel` now, before anything plays (a `/read` session: people see the bot arrive); the
        queue's task then leaves when idle, as after a speech."""
        if self._after is not None:
            await asyncio.wait([self._after])
        await self._connect(channel)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"voice-{self.guild.id}")

    async def stop(self, *, leave: bool = True) -> None:
        """Stop what plays and drop what waits (their outcome: "stopped"); with `leave`, also disconnect now
        (the registry then makes a new player for the next speech)."""
        if leave:
            self.leaving = True
            self._wake.set()
        waiting, self._queue = list(self._queue), deque()
        for utterance in waiting:
            await utterance.finish("stopped")
        if self._current is not None:
            self._stop_current(self._current, "stopped")
        if leave and self._task is not None:
            await asyncio.wait([self._task])

    async def forget(self, user_key: str) -> int:
        """Stop and drop every speech the user asked for or that speaks in their voice (forget-me); how many.
        The rest of the queue plays on."""
        dropped = [utterance for utterance in self._queue if utterance.speech.concerns(user_key)]
        self._queue = deque(utterance for utterance in self._queue if utterance not in dropped)
        for utterance in dropped:
            await utterance.finish("forgotten")
        current = self._current
        if current is not None and current.speech.concerns(user_key) and not current.stopped:
            self._stop_current(current, "forgotten")
            dropped.append(current)
        return len(dropped)

    @staticmethod
    def _stop_current(current: Utterance, why: str) -> None:
        """End the speech playing now: the player thread reads b"" next and calls `after`."""
        current.stopped = why
        current.source.cleanup()
        if current.feeder is not None:
            current.feeder.cancel()  # also when it still waits for its first chunk

    # -- the queue's task ----------------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            if self._after is not None:
                await asyncio.wait([self._after])
            while await self._next_or_idle():
                self._current = self._queue.popleft()
                try:
                    await self._play(self._current)
                except Exception as exc:  # a bug: this speech fails, the queue goes on
                    log.exception("playback.crashed", speech_id=self._current.speech.id)
                    self._current.error = VoicebotError(UNEXPECTED, code="unexpected", detail=repr(exc))
                    await self._current.finish("unexpected")
                finally:
                    self._current = None
        finally:
            self.leaving = True
            self._on_leave(self)
            await self._disconnect()

    async def _next_or_idle(self) -> bool:
        """True when a speech waits; False when the player leaves: stopped, or nothing to play for `idle_s`
        (unless `stay()`)."""
        while not self._queue and not self.leaving:
            self._wake.clear()
            try:
                async with asyncio.timeout(self._idle_s):
                    await self._wake.wait()
            except TimeoutError:
                if not self._stay():
                    return False
        return not self.leaving

    async def _play(self, utterance: Utterance) -> None:
        try:
            voice = await self._connect(utterance.channel)
        except VoicebotError as exc:
            utterance.error = exc
            await utterance.finish(exc.code)
            return
        await utterance.started.wait()
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[Exception | None] = loop.create_future()

        def after(error: Exception | None) -> None:  # on the player thread
            loop.call_soon_threadsafe(lambda: ended.done() or ended.set_result(error))

        if not utterance.source.finished:
            try:
                voice.play(utterance.source, after=after)  # type: ignore[attr-defined]
            except (discord.ClientException, discord.opus.OpusNotLoaded, OSError) as exc:  # not connected any more
                log.warning("playback.play_failed", speech_id=utterance.speech.id, error=repr(exc))
                utterance.error = VoiceUnavailable("The bot lost its voice connection; try again in a moment.",
                                                   detail=repr(exc))
                await utterance.finish(utterance.error.code)
                return
            error = await ended
            if error is not None:
                log.warning("playback.player_failed", speech_id=utterance.speech.id, error=repr(error))
        outcome = "cut" if utterance.source.cut else utterance.stopped or "done"
        log.info("playback.played", speech_id=utterance.speech.id, outcome=outcome,
                 frames=utterance.source.frames, underruns=utterance.source.underruns)
        await utterance.finish(outcome)

    async def _connect(self, channel: VoiceChannel) -> discord.VoiceProtocol:
        voice = self.voice
        try:
            if voice is not None and _connected(voice):
                if voice.channel.id != channel.id:
                    await voice.move_to(channel)  # type: ignore[attr-defined]
                return voice
            if voice is not None:  # a connection that dropped: start afresh
                await voice.disconnect(force=True)
            return await channel.connect(cls=self._voice_cls, self_deaf=True, timeout=CONNECT_TIMEOUT_S)
        except (TimeoutError, discord.ClientException, OSError) as exc:
            log.warning("playback.connect_failed", guild_id=self.guild.id, channel_id=channel.id, error=repr(exc))
            raise VoiceUnavailable("The bot could not join the voice channel; try again in a moment.",
                                   detail=repr(exc)) from None

    async def _disconnect(self) -> None:
        voice = self.voice
        if voice is not None:
            try:
                await voice.disconnect(force=True)
            except (discord.ClientException, OSError) as exc:
                log.warning("playback.disconnect_failed", guild_id=self.guild.id, error=repr(exc))


def _connected(voice: discord.VoiceProtocol) -> bool:
    is_connected = getattr(voice, "is_connected", None)
    return bool(is_connected()) if callable(is_connected) else True
