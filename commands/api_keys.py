"""Per-member keys of the OpenAI-compatible API (`voicebot serve-api`): issue, revoke, and who a request's key
belongs to.

    issued = await keys.issue(member)       # `/voice api-key`: shown once, privately, with the API's base URL
    holder = await keys.holder(raw_key)     # each API request: the member, or `KeyRefused` / `Blocked`
    await keys.revoke(member)               # `/voice api-key revoke`

A key is `vb_` and 43 URL-safe characters from `secrets` (256 bits): recognisable in a leak scan, and too
long to guess. Only its SHA-256 is stored; a request's key is looked up by its digest, so no secret is ever
compared. The key just issued is registered with `backend.redaction` at once, so no log line or error of this
process can show it. Closed by default: keys are issued only when the operator set the API's public URL
(`VOICEBOT_API_PUBLIC_URL`); a member an admin blocked gets none, and their key stops working.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from backend.errors import VoicebotError
from backend.redaction import register_secret
from commands.settings import CommandSettings
from commands.storage import Storage
from commands.storage.api_keys import ApiKey
from commands.storage.errors import StorageUnavailable
from commands.storage.voices import Member
from commands.voice_library import BLOCKED, Blocked

log = structlog.get_logger(__name__)

KEY_PREFIX = "vb_"
KEY_BYTES = 32
KEY = re.compile(rf"{KEY_PREFIX}[A-Za-z0-9_-]{{43}}")  # token_urlsafe(32): 43 characters, no padding
SHOWN_CHARS = len(KEY_PREFIX) + 4  # what a listing shows of a key: "vb_Ab3x…" (24 bits of 256)
API_PATH = "/v1"
MODEL = "qwen3-tts"  # the model name the key's instructions show (the API accepts OpenAI's names too)


class NoApi(VoicebotError):
    """The operator runs no API (no public URL configured): no key is issued."""

    code = "no_api"


class NotInWorkspace(VoicebotError):
    code = "not_in_server"


class KeyRefused(VoicebotError):
    """A request's key is missing, malformed, revoked or unknown (the message does not say which)."""

    code = "invalid_api_key"


NO_API = "This bot does not offer an API for its voices."
REFUSED = "Missing or unknown API key. Get one with /voice api-key in your server, and send it as a bearer token."


@dataclass(frozen=True)
class IssuedKey:
    """A key just issued: `key` is shown to its holder once and kept nowhere."""

    key: str
    record: ApiKey
    base_url: str  # what the SDK's base_url is set to


@dataclass(frozen=True)
class KeyHolder:
    """Who an API request comes from: the member a valid key belongs to (a Starlette user: the web app's
    authentication records it; `display_name` names the member and the key's prefix, never the key)."""

    member: Member
    key: ApiKey

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return f"{self.member.key} (API key {self.key.prefix}…)"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_from_header(authorization: str) -> str | None:
    """The API key an `Authorization` header carries (`Bearer vb_…`, any case of the scheme, spaces around), or
    None when it carries none of this form: nothing else is ever looked up."""
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not KEY.fullmatch(credentials):
        return None
    return credentials


def base_url(settings: CommandSettings) -> str | None:
    """The API's base URL as members' SDKs take it, or None when the operator runs no API."""
    return f"{settings.api_public_url}{API_PATH}" if settings.api_public_url else None


class ApiKeys:
    """One per process, over the storage's `ApiKeyStore` and block list."""

    def __init__(self, storage: Storage, settings: CommandSettings) -> None:
        self.storage = storage
        self.settings = settings

    @property
    def base_url(self) -> str | None:
        return base_url(self.settings)

    async def issue(self, member: Member) -> IssuedKey:
        """A new key for the member in their workspace (their previous one there stops working); `NoApi` when
        the operator runs none, `Blocked` for a blocked member."""
        url = self.base_url
        if url is None:
            raise NoApi(NO_API)
        if not member.workspace_id:
            raise NotInWorkspace("API keys belong to a server: run /voice api-key there, not in a direct message.")
        await self._check_not_blocked(member)
        key = KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)
        register_secret(key)
        record = await self.storage.api_keys.replace(member, key_digest(key), key[:SHOWN_CHARS], datetime.now(UTC))
        log.info("api_key.issued", user_id=member.key, workspace_id=member.workspace_id, key_id=record.id,
                 prefix=record.prefix)
        return IssuedKey(key, record, url)

    async def revoke(self, member: Member) -> bool:
        """Delete the member's key in their workspace; False when they had none."""
        revoked = await self.storage.api_keys.revoke(member)
        log.info("api_key.revoked", user_id=member.key, workspace_id=member.workspace_id, had_key=revoked)
        return revoked

    async def holder(self, key: str | None) -> KeyHolder:
        """Who `key` belongs to; `KeyRefused` when it is no key, or none that exists, `Blocked` when an admin
        blocked its holder, `StorageUnavailable` when it cannot be checked now."""
        if key is None or not KEY.fullmatch(key):
            raise KeyRefused(REFUSED)
        record = await self.storage.api_keys.find(key_digest(key))
        if record is None:
            raise KeyRefused(REFUSED)
        await self._check_not_blocked(record.member)
        try:
            await self.storage.api_keys.mark_used(record.id, datetime.now(UTC))
        except StorageUnavailable as exc:  # when it was last used is not worth refusing a valid key
            log.warning("api_key.mark_used_failed", key_id=record.id, detail=exc.operator_text)
        return KeyHolder(record.member, record)

    async def _check_not_blocked(self, member: Member) -> None:
        if await self.storage.blocks.is_blocked(member):
            raise Blocked(BLOCKED)


def usage_text(issued: IssuedKey, voice_names: list[str]) -> str:
    """How to use a key just issued, for its holder only (platform-neutral plain text with the key in code
    spans; adapters wrap it in their own message)."""
    voices = ", ".join(f"`{name}`" for name in voice_names[:10]) or "none yet (save one with /voice save)"
    more = f" and {len(voice_names) - 10} more" if len(voice_names) > 10 else ""
    return (
        f"Your API key (shown only now; it replaces any key you had here):\n`{issued.key}`\n"
        f"Base URL: `{issued.base_url}`  Model: `{MODEL}`\n"
        f"Voices you can use: {voices}{more}\n"
        "With the OpenAI SDK: `OpenAI(base_url=..., api_key=...).audio.speech.create(model=..., voice=..., "
        "input=...)`. It speaks with your voices and this server's, under the same limits as /say. "
        "Keep it secret; `/voice api-key revoke` deletes it."
    )
