"""Fetching a reference clip a user gave in Slack (the clone form, the save form, /tts-check, a shortcut, a
mention): looked up by id, checked against what Slack says about it, then downloaded from Slack's file host.

`check` runs with the file's size as Slack states it, before a byte is downloaded, so a request that would be
refused anyway (too large, a cooldown, a taken name) costs no download; the download itself stops one byte
past the size limit, whatever Slack stated (`bot.slack.files.download_private`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.files import download_private, resolve
from bot.slack.services import SlackServices


@dataclass(frozen=True)
class FetchedClip:
    data: bytes
    filename: str | None


async def fetch_clip(services: SlackServices, client: AsyncWebClient, file: dict[str, Any],
                     check: Callable[[int | None], Awaitable[None]] | None = None, *,
                     max_bytes: int | None = None) -> FetchedClip:
    """The clip's bytes (at most `max_bytes`, by default the reference clip limit, + 1) and name; raises
    `VoicebotError` subclasses (`SlackProblem` for Slack's failures, whatever `check` raises)."""
    found = await resolve(client, file)  # by id: URLs in the payload are never used
    size = found.get("size")
    if check is not None:
        await check(size if isinstance(size, int) else None)
    limit = services.settings.audio_limits.max_bytes if max_bytes is None else max_bytes
    data = await download_private(found, services.bot_token, limit, origins=services.file_origins)
    name = found.get("name")
    return FetchedClip(data, name if isinstance(name, str) else None)
