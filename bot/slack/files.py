"""Slack files: find the audio file in a message, resolve partial file objects, download a private file.

Private file URLs (`url_private_download`) need the bot token as `Authorization: Bearer`; with a wrong token or
without the `files:read` scope Slack answers a 200 with its HTML sign-in page, which must not reach the audio
decoder as if it were a clip.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.slack_errors import SlackProblem, explain

# What the modal's file picker offers (Slack's `file_input.filetypes` are extensions). The clip is decoded by
# content later (`backend.intake`), so this only steers the picker; mp4/webm cover Slack's own audio clips.
AUDIO_FILETYPES = ["wav", "mp3", "ogg", "oga", "opus", "m4a", "flac", "webm", "mp4", "aac"]


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
    """The first audio file of a message; stubs that say only `file_access: check_file_info` are looked up."""
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
    """The full file object: events may carry a stub (`file_access: check_file_info`) without download URLs."""
    if file.get("url_private_download") or file.get("url_private"):
        return file
    try:
        info = await client.files_info(file=file["id"])
    except SlackClientError as exc:
        raise explain(exc, "read the attached file") from exc
    return {**file, **(info.get("file") or {})}


async def download_private(file: dict[str, Any], token: str, max_bytes: int, *, timeout_s: float = 60.0) -> bytes:
    """The bytes of a private Slack file, at most `max_bytes + 1` of them (so the size check can say "too large"
    without this process holding an arbitrarily large upload)."""
    url = file.get("url_private_download") or file.get("url_private")
    if not url:
        raise SlackProblem("Slack sent no download link for the file; attach it again.", code="slack_file_no_url")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
                    session.get(url, headers=headers) as response):
            if response.content_type == "text/html":
                raise SlackProblem(
                    "Slack answered a sign-in page instead of the file: the bot token is wrong or the app lacks "
                    "the `files:read` scope. A workspace admin must add `files:read` under OAuth & Permissions "
                    "and reinstall the app (and the operator must use its current xoxb- token).",
                    code="slack_file_html")
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
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SlackProblem(f"Could not download the file from Slack ({type(exc).__name__}); try again.",
                           code="slack_file_download") from exc
