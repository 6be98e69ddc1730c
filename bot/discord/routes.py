"""The ways the bot can reach the user of one interaction, tried in order until one works.

1. the interaction's webhook: follow-ups (public, or ephemeral: only the user sees them) and edits of the
   original response. Only while the interaction token lives (15 minutes) — Discord answers 401 after that;
2. a normal message in the channel, with the bot token (the bot's permissions there apply: it may be refused);
3. a direct message to the user (refused when the user does not accept DMs from the server's members).

A result goes public -> channel (mentioning only that user) -> DM, each with its upload limit; a failure is told
privately: ephemeral follow-up while the token lives, else DM, never in the channel. Every call has a deadline
(`bot.discord.calls`); discord.py handles 429s and 5xx retries inside it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

import discord
import structlog

from backend.errors import VoicebotError
from bot.discord.calls import CALL_FAILURES, DiscordTiming, describe_failure, token_is_dead, within

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Bots upload to a DM what a user without Nitro may (guild channels report their own limit in the interaction).
DM_UPLOAD_LIMIT = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES


class Route(Enum):
    FOLLOWUP = "follow-up"
    CHANNEL = "channel message"
    DM = "direct message"


class ChannelUnavailable(discord.DiscordException):
    """The interaction names no channel the bot can send to."""


@dataclass(frozen=True)
class RouteFailure:
    route: Route
    reason: str  # for operators
    user_message: str | None = None  # set when the failure is the user's to know (e.g. the result is too large)


class NoRouteLeft(Exception):
    """Every route refused the message; `failures` says how, route by route."""

    def __init__(self, failures: list[RouteFailure]) -> None:
        super().__init__("; ".join(f"{f.route.value}: {f.reason}" for f in failures))
        self.failures = failures


# Builds a message for an upload limit in bytes (kwargs of `send`, with a fresh `discord.File`); raises a
# VoicebotError when the result cannot fit.
MessageFor = Callable[[int], Awaitable[dict[str, Any]]]


class Routes:
    """One interaction's ways to its user. Remembers a dead token (no later call tries it) and the DM channel."""

    def __init__(self, interaction: discord.Interaction, timing: DiscordTiming) -> None:
        self.interaction = interaction
        self.timing = timing
        self._token_dead = False
        self._dm: discord.DMChannel | None = None

    @property
    def user(self) -> discord.User | discord.Member:
        return self.interaction.user

    def token_alive(self) -> bool:
        """Neither our clock nor Discord says the interaction token expired."""
        return not self._token_dead and not self.interaction.is_expired()

    async def webhook(self, call: Awaitable[T], seconds: float | None = None) -> T:
        """A call with the interaction token; Discord's "invalid token" marks it dead for every later call."""
        try:
            return await within(seconds or self.timing.call_s, call)
        except discord.HTTPException as exc:
            if token_is_dead(exc):
                self._token_dead = True
                log.info("discord.token_expired", status=exc.status, code=exc.code)
            raise

    async def followup(self, seconds: float | None = None, **message: Any) -> discord.WebhookMessage:
        return await self.webhook(self.interaction.followup.send(wait=True, **message), seconds)

    async def channel_send(self, *, ping: bool, seconds: float | None = None, **message: Any) -> discord.Message:
        """A normal channel message starting with the user's mention; only `ping` notifies them (and only them)."""
        channel = self.interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            raise ChannelUnavailable(f"no channel to send to (channel id {self.interaction.channel_id})")
        content = f"{self.user.mention} {message.pop('content', None) or ''}".strip()
        mentions = discord.AllowedMentions(everyone=False, roles=False, users=[self.user] if ping else False)
        return await within(seconds or self.timing.call_s,
                            channel.send(content=content, allowed_mentions=mentions, **message))

    async def dm_send(self, seconds: float | None = None, **message: Any) -> discord.Message:
        if self._dm is None:
            self._dm = await within(self.timing.call_s, self.user.create_dm())
        return await within(seconds or self.timing.call_s, self._dm.send(**message))

    # -- the three uses ------------------------------------------------------------------------------------
    async def post_result(self, message_for: MessageFor) -> Route:
        """The result through the first route that takes it; `NoRouteLeft` when none does."""
        failures: list[RouteFailure] = []
        guild_limit = self.interaction.filesize_limit
        attempts: list[tuple[Route, int, Callable[[dict[str, Any]], Awaitable[object]]]] = [
            (Route.FOLLOWUP, guild_limit, lambda m: self.followup(self.timing.upload_s, **m)),
            (Route.CHANNEL, guild_limit, lambda m: self.channel_send(ping=True, seconds=self.timing.upload_s, **m)),
            (Route.DM, DM_UPLOAD_LIMIT, lambda m: self.dm_send(self.timing.upload_s, **m)),
        ]
        for route, limit, send in attempts:
            if route is Route.FOLLOWUP and not self.token_alive():
                failures.append(RouteFailure(route, "interaction token expired"))
                continue
            try:
                await send(await message_for(limit))
            except VoicebotError as exc:  # does not fit this route's upload limit
                failures.append(RouteFailure(route, exc.operator_text, exc.message))
            except CALL_FAILURES as exc:
                failures.append(RouteFailure(route, describe_failure(exc)))
                log.warning("discord.result_route_failed", route=route.value, reason=describe_failure(exc))
            else:
                if failures:
                    log.info("discord.result_rerouted", route=route.value,
                             failed=[f"{f.route.value}: {f.reason}" for f in failures])
                return route
        raise NoRouteLeft(failures)

    async def tell_privately(self, text: str) -> Route | None:
        """`text` to the user only: ephemeral follow-up while the token lives, else a DM; None if neither works."""
        if self.token_alive():
            try:
                await self.followup(content=text, ephemeral=True)
                return Route.FOLLOWUP
            except CALL_FAILURES as exc:
                log.warning("discord.ephemeral_refused", reason=describe_failure(exc))
        try:
            await self.dm_send(content=text)
            return Route.DM
        except CALL_FAILURES as exc:
            log.warning("discord.dm_refused", reason=describe_failure(exc))
        return None

    async def post_progress(self, text: str) -> tuple[discord.Message, Route] | None:
        """A message the bot owns (editable after the token expired): in the channel (the user's mention, no
        ping), else a DM; None if neither works."""
        try:
            return await self.channel_send(ping=False, content=text), Route.CHANNEL
        except CALL_FAILURES as exc:
            log.warning("discord.channel_refused", reason=describe_failure(exc))
        try:
            return await self.dm_send(content=text), Route.DM
        except CALL_FAILURES as exc:
            log.warning("discord.dm_refused", reason=describe_failure(exc))
        return None
