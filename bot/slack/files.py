"""Slack files: find the audio file in a message, look it up by id, download it from Slack's file host only.

A file object in an event, a shortcut or a form submission names its own download URLs, but those URLs are
never used: every file is looked up by id with `files.info` and downloaded from the URL Slack answers there,
and only from `SLACK_FILE_ORIGINS` over HTTPS. The bot token goes with that download as `Authorization:
Bearer`, so this module is the one place that decides where the token may go: it is attached per request
(redirects included) by `_bearer_for_slack_only`, which refuses any other origin before anything is sent.

With a wrong token or without the `files:read` scope Slack answers a 200 with its HTML sign-in page, which
must not reach the audio decoder as if it were a clip.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiohttp
import structlog
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse, hdrs
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from yarl import URL

from backend.redaction import redact_url
from bot.slack.slack_errors import ASK_ADMIN, SlackProblem, explain

log = structlog.get_logger(__name__)

# Where Slack serves private files (`url_private`, `url_private_download`), the only origins the bot token is
# sent to besides the Web API. Tests pass their fake file host to `SlackServices` instead.
SLACK_FILE_ORIGINS = ("https://files.slack.com",)
MAX_REDIRECTS = 3  # Slack's file host may redirect within itself; never further than this

# What the modal's file picker offers (Slack's `file_input.filetypes` are extensions). The clip is decoded by
# content later (`backend.intake`), so this only steers the picker; mp4/webm cover Slack's own audio clips.
AUDIO_FILETYPES = ["wav", "mp3", "ogg", "oga", "opus", "m4a", "flac", "webm", "mp4", "aac"]

NOT_IN_SLACK = ("Voicebot can only use audio files uploaded to Slack, and this one is stored elsewhere. Upload the "
                "clip to Slack itself and try again.")


def is_audio(file: dict[str, Any]) -> bool:
    """Whether a Slack file object looks like audio (voice clips recorded in Slack included)."""
    mimetype = str(file.get("mimetype") or "")
    if mimetype.startswith("audio/") or file.get("subtype") == "slack_audio":
        return True
    if file.get("media_display_type") == "audio":
        return True
    return str(file.get("filetype") or "").lower() in AUDIO_FILETYPES and not mimetype.startswith(("image/", "text/"))


def first_audio(files: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    return next((f for f in files or [] if is_audio(f)), None)


async def find_audio(client: AsyncWebClient, files: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The first audio file of a message; stubs that say only `file_access: check_file_info` are looked up.
    What is returned only picks the file: `resolve` looks it up again by id before anything is downloaded."""
    if (audio := first_audio(files)) is not None:
        return audio
    stubs = [f for f in files or [] if f.get("file_access") == "check_file_info" and f.get("id")]
    for stub in stubs:
        try:
            if is_audio(full := await resolve(client, stub)):
                return full
        except SlackProblem:
            continue
    return None


async def resolve(client: AsyncWebClient, file: dict[str, Any]) -> dict[str, Any]:
    """The file as `files.info` describes it, whatever the payload said about it (URLs included)."""
    file_id = file.get("id")
    if not isinstance(file_id, str) or not file_id:
        raise SlackProblem("Slack sent the file without its id; attach it again.", code="slack_file_no_id")
    try:
        info = await client.files_info(file=file_id)
    except SlackClientError as exc:
        raise explain(exc, "read the attached file") from exc
    found = info.get("file")
    if not isinstance(found, dict):
        raise SlackProblem("Slack did not describe the attached file; attach it again.", code="slack_file_no_info")
    return found


def _origin(url: URL | str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of an absolute URL without credentials; None for anything else."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
    except (ValueError, TypeError):
        return None
    if not parsed.is_absolute() or parsed.user is not None or parsed.password is not None or not parsed.host:
        return None
    return parsed.scheme.lower(), parsed.host.lower(), parsed.port


def is_slack_file_url(url: URL | str, origins: Iterable[str] = SLACK_FILE_ORIGINS) -> bool:
    """Whether `url` is on one of `origins` (scheme, host and port all equal)."""
    return (found := _origin(url)) is not None and found in {_origin(origin) for origin in origins}


def check_origin(url: URL | str, origins: tuple[str, ...]) -> None:
    """Refuse (and log, the host named, the URL without its query) a download link off Slack's file host."""
    if not is_slack_file_url(url, origins):
        parsed = _origin(url)
        host = parsed[1] if parsed else "an unparsable URL"
        log.warning("slack.file_host_refused", host=host, url=redact_url(str(url)))
        raise SlackProblem(NOT_IN_SLACK, code="slack_file_elsewhere",
                           detail=f"the file's download link points to {host}, not Slack's file host; nothing "
                                  "was sent there")


def _bearer_for_slack_only(token: str, origins: tuple[str, ...]) -> aiohttp.ClientMiddlewareType:
    """aiohttp client middleware: every request, the first and each redirect, must go to Slack's file host,
    and only then does it carry the token. aiohttp itself drops the header on a cross-origin redirect; this
    refuses the hop before it is made, so a foreign host gets neither the token nor a request."""

    async def bearer_for_slack_only(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        check_origin(request.url, origins)
        request.headers[hdrs.AUTHORIZATION] = f"Bearer {token}"
        return await handler(request)

    return bearer_for_slack_only


def check_hosted(file: dict[str, Any]) -> str:
    """The download URL of a file Slack itself stores; remote files (`is_external`, e.g. Google Drive links
    added with `files.remote.add`) live on other hosts and are refused."""
    url = file.get("url_private_download") or file.get("url_private")
    if file.get("is_external") or file.get("mode") in ("external", "remote"):
        log.warning("slack.remote_file_refused", file_id=file.get("id"), external_type=file.get("external_type"),
                    url=redact_url(str(url or "")))
        raise SlackProblem(NOT_IN_SLACK, code="slack_file_elsewhere",
                           detail="the file is a remote file (stored outside Slack)")
    if not isinstance(url, str) or not url:
        raise SlackProblem("Slack sent no download link for the file; attach it again.", code="slack_file_no_url")
    return url


async def download_private(file: dict[str, Any], token: str, max_bytes: int, *,
                           origins: tuple[str, ...] = SLACK_FILE_ORIGINS, timeout_s: float = 60.0) -> bytes:
    """The bytes of a file `resolve` returned, from Slack's file host only, at most `max_bytes + 1` of them
    (so the size check can say "too large" without this process holding an arbitrarily large upload)."""
    url = check_hosted(file)
    check_origin(url, origins)  # also refuses what aiohttp would not even try (ftp:, no host)
    try:
        async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s),
                                          middlewares=(_bearer_for_slack_only(token, origins),)) as session,
                    session.get(url, max_redirects=MAX_REDIRECTS) as response):
            if response.content_type == "text/html":
                raise SlackProblem(
                    f"Slack would not hand the file over to Voicebot. {ASK_ADMIN}", code="slack_file_html",
                    detail="Slack answered its sign-in page instead of the file: the bot token is wrong or the app "
                           "lacks the files:read scope (add it under OAuth & Permissions, reinstall the app and "
                           "use its current xoxb- token)")
            if response.status != 200:
                raise SlackProblem(
                    f"Slack refused to hand over the file (HTTP {response.status}); attach it again.",
                    code="slack_file_status")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(1 << 16):
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    break
            return b"".join(chunks)
    except aiohttp.TooManyRedirects as exc:
        raise SlackProblem("Slack did not hand over the file; attach it again.", code="slack_file_redirects",
                           detail=f"more than {MAX_REDIRECTS} redirects") from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SlackProblem("Could not download the file from Slack; try again.", code="slack_file_download",
                           detail=f"{type(exc).__name__}: {exc}") from exc
