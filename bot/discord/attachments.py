"""Reference clips are downloaded from Discord's CDN and from nowhere else, with bounded memory and time.

An attachment's URL arrives inside the interaction payload, and discord.py's `Attachment.read()` would GET
whatever it names, follow redirects to any host and read a body of any size. The bot downloads through
`DiscordCdn.download` instead:

- the URL must be HTTPS on one of Discord's CDN hosts (`DISCORD_CDN_ORIGINS`, the one allowlist) with no
  credentials in it; this is checked before any request, and again on every redirect hop (httpx runs request
  hooks for each hop), so a redirect can only lead to another allowed host;
- the body is read in chunks and abandoned as soon as it passes the clip size limit, whatever Content-Length
  claims; the whole download has one deadline.

A refused URL is logged with its host (the URL redacted: Discord's signed query is dropped); the user is told
what to do, never which host was refused.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import structlog

from backend.errors import InvalidInput, VoicebotError
from backend.intake.limits import MIB
from backend.redaction import redact_url

log = structlog.get_logger(__name__)

# Where Discord serves attachments: `url` on cdn.discordapp.com, `proxy_url` on media.discordapp.net.
DISCORD_CDN_ORIGINS = ("https://cdn.discordapp.com", "https://media.discordapp.net")
DOWNLOAD_TIMEOUT_S = 60.0
MAX_REDIRECTS = 3


class AttachmentRefused(VoicebotError):
    """The attachment's URL (or a redirect from it) leads somewhere other than Discord's CDN."""

    code = "attachment_not_on_discord"


class DownloadFailed(VoicebotError):
    """Discord's CDN did not hand over the reference clip."""

    code = "download_failed"


REFUSED = ("That clip isn't stored on Discord, so the bot won't download it. Attach the audio file directly to the "
           "command or message, then try again.")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port  # httpx lowercases the host and drops a default port


@dataclass(frozen=True)
class DiscordCdn:
    """Where attachment bytes may come from (scheme, host and port of each origin), and the download's deadline.

    The product uses the defaults; tests point `origins` at their fake CDN.
    """

    origins: tuple[str, ...] = DISCORD_CDN_ORIGINS
    timeout_s: float = DOWNLOAD_TIMEOUT_S

    def check(self, url: str | httpx.URL) -> None:
        """Raise `AttachmentRefused` (and log the host) unless `url` is on an allowed origin, without credentials."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = None
        allowed = {_origin(httpx.URL(origin)) for origin in self.origins}
        if parsed is None or parsed.userinfo or _origin(parsed) not in allowed:
            host = parsed.host if parsed is not None else None
            log.warning("discord.attachment_refused", host=host, url=redact_url(str(url)))
            raise AttachmentRefused(REFUSED, detail=f"{redact_url(str(url))} is not on Discord's CDN")

    async def download(self, url: str, max_bytes: int) -> bytes:
        """The attachment's bytes, at most `max_bytes` of them, within `timeout_s`."""
        self.check(url)  # before any connection is opened
        try:
            return await self._fetch(url, max_bytes)
        except DownloadFailed as exc:
            log.warning("discord.download_failed", code=exc.code, detail=exc.detail)
            raise

    async def _fetch(self, url: str, max_bytes: int) -> bytes:
        async def check_hop(request: httpx.Request) -> None:
            self.check(request.url)

        try:
            async with asyncio.timeout(self.timeout_s), httpx.AsyncClient(
                timeout=self.timeout_s, follow_redirects=True, max_redirects=MAX_REDIRECTS,
                transport=httpx.AsyncHTTPTransport(retries=2),  # connection failures only; a GET is safe to repeat
                event_hooks={"request": [check_hop]},
            ) as client, client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise DownloadFailed(
                        "Discord did not hand over the reference clip; upload it again and retry.",
                        detail=f"HTTP {response.status_code} from {redact_url(str(response.url))}")
                return await _read_capped(response, max_bytes)
        except TimeoutError:
            raise DownloadFailed("Downloading the reference clip from Discord took too long; please try again.",
                                 detail=f"no complete answer within {self.timeout_s:g} s from {redact_url(url)}",
                                 ) from None
        except httpx.HTTPError as exc:  # connection failures, too many redirects, a broken body
            raise DownloadFailed("Discord did not hand over the reference clip; please try again.",
                                 detail=f"{type(exc).__name__} from {redact_url(url)}") from exc


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The body, refused as soon as it passes `max_bytes` (a Content-Length over it is refused unread)."""
    too_big = InvalidInput(f"The reference clip is over the {max_bytes / MIB:.0f} MiB limit; send a shorter clip.",
                           code="audio_too_large")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise too_big
    return bytes(body)
