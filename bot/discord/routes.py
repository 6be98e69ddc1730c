"""The ways the bot can reach the user of one interaction, tried in order until one works.

1. the interaction's webhook: follow-ups (public, or ephemeral: only the user sees them) and edits of the
   original response. Only while the interaction token lives (15 minutes) — Discord answers 401 after that;
2. a normal message in the channel, with the bot token (the bot's permissions there apply: it may be refused);
3. a direct message to the user (refused when the user does not accept DMs from the server's members).

A result goes public -> channel (mentioning only that user) -> DM, each with its upload limit; a failure is told
privately: ephemeral follow-up while the token lives, else DM, never in the channel. Every call has a deadline
(`bot.discord.calls`); discord.py handles 429s and 5xx retries inside it.

The job journal keeps an interaction's routes (`route_of`) so a restarted bot reaches the user the same way
(`Routes.from_route`): the follow-up while the token lives, then the channel, then a DM.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

import discord
import structlog

from backend.errors import VoicebotError
from backend.redaction import register_secret
from bot.discord.calls import CALL_FAILURES, DiscordTiming, describe_failure, token_is_dead, within

log = structlog.get_logger(__name__)
T = TypeVar("T")

# Bots upload to a DM what a user without Nitro may (guild channels report their own limit in the interaction).
DM_UPLOAD_LIMIT = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES


def route_of(interaction: discord.Interaction) -> dict[str, object]:
    """What the job journal keeps of an interaction so a restarted bot can reach its user (`Routes.from_route`).
    Holds the interaction token: a secret, never logged."""
    return {"application_id": str(interaction.application_id), "token": interaction.token,
            "expires_at": interaction.expires_at.isoformat(), "channel_id": str(interaction.channel_id or ""),
            "guild_id": str(interaction.guild_id or ""), "user_id": str(interaction.user.id),
            "filesize_limit": interaction.filesize_limit}


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


class JournaledUser(discord.Object):
    """The user of a journaled interaction, known by id only (the bot has no member cache)."""

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


class Routes:
    """One interaction's ways to its user. Remembers a dead token (no later call tries it) and the DM channel.

    Built from a live interaction, or after a restart from what the job journal kept of it (`route_of`,
    `from_route`): the same three routes, the follow-up only while the token lives (minus `handoff_s`)."""

    def __init__(self, timing: DiscordTiming, *, user: discord.abc.User | JournaledUser, webhook: discord.Webhook,
                 expires_at: datetime, channel: object, channel_id: int | None, filesize_limit: int,
                 open_dm: Callable[[], Awaitable[discord.DMChannel]],
                 interaction: discord.Interaction | None = None) -> None:
        self.interaction = interaction  # None after a restart: only the journaled parts are left
        self.timing = timing
        self.user = user
        self._webhook = webhook
        self._expires_at = expires_at
        self._channel = channel
        self._channel_id = channel_id
        self._filesize_limit = filesize_limit
        self._open_dm = open_dm
        self._token_dead = False
        self._dm: discord.DMChannel | None = None

    @classmethod
    def for_interaction(cls, interaction: discord.Interaction, timing: DiscordTiming) -> Routes:
        return cls(timing, user=interaction.user, webhook=interaction.followup, expires_at=interaction.expires_at,
                   channel=interaction.channel, channel_id=interaction.channel_id,
                   filesize_limit=interaction.filesize_limit, open_dm=interaction.user.create_dm,
                   interaction=interaction)

    @classmethod
    def from_route(cls, client: discord.Client, route: Mapping[str, Any], timing: DiscordTiming) -> Routes:
        """The routes of a journaled interaction (`route_of`); its token is registered as a secret first. The
        token is not used in its last `timing.handoff_s`: an upload must not start on a dying token."""
        token = str(route["token"])
        margin = timedelta(seconds=timing.handoff_s)
        register_secret(token)
        user = JournaledUser(int(route["user_id"]))
        channel_id = int(route["channel_id"]) if route.get("channel_id") else None
        guild_id = int(route["guild_id"]) if route.get("guild_id") else None
        webhook = discord.Webhook.from_state(  # as `Interaction.followup` builds it: an application webhook
            data={"id": int(route["application_id"]), "type": 3, "token": token}, state=client._connection)
        return cls(timing, user=user, webhook=webhook,
                   expires_at=datetime.fromisoformat(str(route["expires_at"])) - margin,
                   channel=client.get_partial_messageable(channel_id, guild_id=guild_id) if channel_id else None,
                   channel_id=channel_id, filesize_limit=int(route["filesize_limit"]),
                   open_dm=lambda: client.create_dm(user))

    def token_alive(self) -> bool:
        """Neither our clock nor Discord says the interaction token expired."""
        return not self._token_dead and discord.utils.utcnow() < self._expires_at

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
        return await self.webhook(self._webhook.send(wait=True, **message), seconds)

    async def channel_send(self, *, ping: bool, seconds: float | None = None, **message: Any) -> discord.Message:
        """A normal channel message starting with the user's mention; only `ping` notifies them (and only them)."""
        channel = self._channel
        if not isinstance(channel, discord.abc.Messageable):
            raise ChannelUnavailable(f"no channel to send to (channel id {self._channel_id})")
        content = f"{self.user.mention} {message.pop('content', None) or ''}".strip()
        mentions = discord.AllowedMentions(everyone=False, roles=False, users=[self.user] if ping else False)
        return await within(seconds or self.timing.call_s,
                            channel.send(content=content, allowed_mentions=mentions, **message))

    async def dm_send(self, seconds: float | None = None, **message: Any) -> discord.Message:
        if self._dm is None:
            self._dm = await within(self.timing.call_s, self._open_dm())
        return await within(seconds or self.timing.call_s, self._dm.send(**message))

    # -- the three uses ------------------------------------------------------------------------------------
    async def post_result(self, message_for: MessageFor) -> Route:
        """The result through the first route that takes it; `NoRouteLeft` when none does."""
        failures: list[RouteFailure] = []
        guild_limit = self._filesize_limit
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
