"""Deadlines for every Discord call, and what a failed call means.

discord.py retries by itself: a 429 after its `retry_after` (global and per-route buckets, pre-emptively from the
X-RateLimit headers on bot-token routes), 500/502/504 up to five times with growing sleeps, reset connections.
So the bot never retries a call by hand; it bounds each call with a deadline (a retry_after of minutes, a stalled
connection) and, when a call still fails, takes the next route (`bot.discord.routes`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import discord

T = TypeVar("T")

# A failed Discord call: an HTTP error after discord.py's own retries, a rate limit longer than the client
# accepts (`discord.RateLimited`), a connection error, or our deadline.
CALL_FAILURES: tuple[type[BaseException], ...] = (discord.DiscordException, aiohttp.ClientError, OSError,
                                                  TimeoutError)
# Discord's answers that mean the interaction token is no longer valid (it lasts 15 minutes).
DEAD_TOKEN_CODES = {50027, 10015, 10062}  # invalid webhook token, unknown webhook, unknown interaction


@dataclass(frozen=True)
class DiscordTiming:
    """How long the bot waits for Discord, and how often it edits one progress message.

    `call_s` bounds an edit, a delete or a message without files (discord.py's 429 and 5xx retries included);
    `upload_s` a message with the audio; `max_ratelimit_wait_s` is given to discord.py for bot-token routes: a
    longer `retry_after` fails the call at once, so the next route is tried instead of waiting (30 s at least);
    `progress_interval_s` is the least time between two edits of one message; `handoff_s` is how long before the
    interaction token expires the progress moves to a message the bot owns."""

    call_s: float = 30.0
    upload_s: float = 120.0
    max_ratelimit_wait_s: float = 30.0
    progress_interval_s: float = 2.0
    handoff_s: float = 60.0


async def within(seconds: float, call: Awaitable[T]) -> T:
    """`call` with a deadline: TimeoutError when it takes longer than `seconds`."""
    async with asyncio.timeout(seconds):
        return await call


def token_is_dead(exc: BaseException) -> bool:
    """Discord says the interaction token expired or the interaction is gone."""
    return isinstance(exc, discord.HTTPException) and (exc.status == 401 or exc.code in DEAD_TOKEN_CODES)


def describe_failure(exc: BaseException) -> str:
    """A short operator-facing reason for logs and the undelivered store (never a token: discord.py's messages
    carry only the status, the code and Discord's text)."""
    if isinstance(exc, discord.HTTPException):
        return f"HTTP {exc.status}, Discord code {exc.code}"
    if isinstance(exc, discord.RateLimited):
        return f"rate limited for {exc.retry_after:.0f} s"
    if isinstance(exc, TimeoutError):
        return "no answer before the deadline"
    return type(exc).__name__
