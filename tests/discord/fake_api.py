"""A fake Discord REST API + CDN on aiohttp, and builders for the gateway payloads discord.py parses.

discord.py builds every REST and webhook URL from `discord.http.Route.BASE`; pointing it at this server lets a
real `discord.Client` log in, sync its command tree, answer interactions, edit and delete the original response
and upload follow-ups, all recorded in `FakeDiscord.calls`. Attachment URLs point at the same server (`/cdn/...`),
which serves whatever bytes the test registered. Interactions are fed through
`client._connection.parse_interaction_create`, the parser discord.py runs for a gateway INTERACTION_CREATE.
The bot downloads attachments only from the origins of its `DiscordCdn`: `FakeDiscord.allowed_cdn` is this server's.
A second `FakeDiscord` makes a hostile host: its attachments are off the bot's CDN and it records any request.
`FakeDiscord` also keeps what users would see (`messages`, `messages_of`) and models what makes delivery fail:
interaction tokens that expire, channels and DMs that refuse the bot, upload limits, rate limits, outages, stalls.

Gotchas the server honours (see shared/notes/offline-testing.md): JSON replies carry exactly
`Content-Type: application/json`; the interaction callback returns `{"interaction": ...}`; webhook follow-ups
(`?wait=1`) return a full message object.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import discord
from aiohttp import web

from bot.discord.attachments import DiscordCdn
from tests.discord.fake_ratelimits import VIA, RateLimiter

APP_ID = 1_000_000_000_000_000_001
BOT_ID = 1_000_000_000_000_000_002
GUILD_ID = 1_000_000_000_000_000_003
CHANNEL_ID = 1_000_000_000_000_000_004
OWNER_ID = 1_000_000_000_000_000_005
TOKEN = "fake.bot.token"

ADMIN = discord.Permissions(administrator=True).value
BOT_PERMISSIONS = discord.Permissions(send_messages=True, attach_files=True, embed_links=True).value
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
TOKEN_LIFETIME_S = 15 * 60

# Interaction types and callback types from the Discord API, named so assertions read as prose.
APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE = 4, 5, 6, 7
AUTOCOMPLETE_RESULT, MODAL = 8, 9
EPHEMERAL = 1 << 6

_seq = itertools.count(1)


def snowflake(age_s: float = 0.0) -> int:
    """A fresh id stamped 'now', or `age_s` ago (discord.py derives `created_at`, and so expiry, from it)."""
    created = discord.utils.utcnow() - datetime.timedelta(seconds=age_s)
    return discord.utils.time_snowflake(created) + next(_seq)


def user_payload(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name, "discriminator": "0", "global_name": name, "avatar": None,
            "bot": bot}


def message_payload(message_id: int, content: str = "", *, author: dict | None = None,
                    attachments: list[dict] | None = None, flags: int = 0,
                    channel_id: int = CHANNEL_ID) -> dict[str, Any]:
    return {"id": str(message_id), "channel_id": str(channel_id), "type": 0, "content": content,
            "author": author or user_payload(BOT_ID, "voicebot", bot=True), "attachments": attachments or [],
            "embeds": [], "mentions": [], "mention_roles": [], "mention_everyone": False, "pinned": False,
            "tts": False, "timestamp": "2025-01-01T00:00:00+00:00", "edited_timestamp": None, "flags": flags,
            "components": []}


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py's json_or_text() checks for the exact header value 'application/json'.
    return web.Response(body=json.dumps(obj).encode(), status=status,
                        headers={**(headers or {}), "Content-Type": "application/json"})


@dataclass
class UploadedFile:
    field: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Call:
    """One request the bot made, JSON body or multipart (payload_json + files) decoded."""

    method: str
    path: str
    query: dict[str, str]
    auth: str | None
    json: Any = None
    files: list[UploadedFile] = field(default_factory=list)
    at: float = 0.0  # on the fake's clock
    status: int | None = None  # of the answer
    created: FakeMessage | None = None  # the message this request created

    @property
    def content(self) -> str:
        """The message text of a callback, edit or follow-up."""
        body = self.json or {}
        data = body.get("data", body) if isinstance(body, dict) else {}
        return (data or {}).get("content") or ""

    @property
    def flags(self) -> int:
        body = self.json or {}
        data = body.get("data", body) if isinstance(body, dict) else {}
        return (data or {}).get("flags") or 0

    @property
    def embeds(self) -> list[dict]:
        body = self.json or {}
        data = body.get("data", body) if isinstance(body, dict) else {}
        return (data or {}).get("embeds") or []


@dataclass
class FakeMessage:
    """A message as the fake keeps it: where it is, what it says now, and every write on the fake's clock."""

    id: int
    channel_id: int
    kind: str  # "original" (the deferred response), "followup", "channel" or "dm"
    token: str | None = None  # the interaction token of originals and follow-ups
    flags: int = 0
    files: list[UploadedFile] = field(default_factory=list)
    history: list[tuple[float, str]] = field(default_factory=list)  # (time, content): creation, then each edit
    deleted: bool = False

    @property
    def content(self) -> str:
        return self.history[-1][1] if self.history else ""

    @property
    def edit_times(self) -> list[float]:
        return [at for at, _ in self.history[1:]]


@dataclass
class TokenInfo:
    """An interaction the fake was told about: when Discord created it and its upload limit."""

    created: float  # epoch seconds, from the interaction id
    user_id: int
    upload_limit: int = DEFAULT_UPLOAD_LIMIT


class FakeDiscord:
    """The Discord REST API and CDN, as far as a slash-command bot uses them, recording every request.

    Modelled: interaction tokens expire 15 minutes after the interaction (on the fake's clock: `advance` moves
    it; `expire` kills one at once) with Discord's 401 / code 50027; messages (original responses, follow-ups,
    channel messages, DMs) with their contents and edit history; upload limits (413, code 40005) per interaction,
    guild channel and DM; a channel or DMs refusing the bot (403, codes 50013 / 50007); rate limits and injected
    429s and 500s (`ratelimits`, see fake_ratelimits.py); stalled answers (`stall`), for deadlines.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.cdn: dict[str, tuple[bytes, str]] = {}
        self.cdn_redirects: dict[str, str] = {}  # path -> Location
        self.cdn_chunked: set[str] = set()  # paths served without Content-Length
        self._failures: list[tuple[Callable[[Call], bool], int]] = []
        self._stalls: list[Callable[[Call], bool]] = []
        self.base = ""
        self.offset_s = 0.0  # the fake's clock runs this far ahead of the real one
        self.tokens: dict[str, TokenInfo] = {}
        self.expired: set[str] = set()
        self.messages: dict[int, FakeMessage] = {}
        self.originals: dict[str, int] = {}  # token -> id of its original response
        self.dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self.refuse_channel = False  # the bot may not post in CHANNEL_ID (Missing Permissions)
        self.refuse_dms: set[int] = set()  # users who do not accept DMs from the bot
        self.guild_upload_limit = DEFAULT_UPLOAD_LIMIT
        self.dm_upload_limit = DEFAULT_UPLOAD_LIMIT
        self.ratelimits = RateLimiter(self.now, limits={})  # no limits unless a test sets them
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    # --- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"{self.base}/api/v10"

    @property
    def allowed_cdn(self) -> DiscordCdn:
        """What the bot under test may download from: this server only (the product allows Discord's hosts)."""
        return DiscordCdn(origins=(self.base,))

    # --- the clock and the interactions --------------------------------------------------------------------
    def now(self) -> float:
        """The fake's clock (monotonic seconds): message history and rate-limit windows are on it."""
        return asyncio.get_running_loop().time() + self.offset_s

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (Discord's view of time) forward: tokens older than 15 minutes die."""
        self.offset_s += seconds

    def register(self, payload: dict[str, Any]) -> None:
        """An interaction the gateway delivered: its token expires 15 minutes after its id's timestamp. A button
        click's "original response" is the message holding the button."""
        created = discord.utils.snowflake_time(int(payload["id"])).timestamp()
        self.tokens[payload["token"]] = TokenInfo(created, int(payload["member"]["user"]["id"]),
                                                  payload.get("attachment_size_limit", DEFAULT_UPLOAD_LIMIT))
        if "message" in payload:
            self.originals[payload["token"]] = int(payload["message"]["id"])

    def expire(self, payload: dict[str, Any]) -> None:
        self.expired.add(payload["token"])

    def token_alive(self, token: str) -> bool:
        info = self.tokens.get(token)
        age = time.time() + self.offset_s - info.created if info else 0.0
        return token not in self.expired and age < TOKEN_LIFETIME_S

    # --- recording --------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        call = Call(request.method, request.path, dict(request.query), request.headers.get("Authorization"))
        if request.content_type == "multipart/form-data":
            async for part in await request.multipart():
                if part.name == "payload_json":
                    call.json = json.loads(await part.text())
                else:
                    call.files.append(UploadedFile(part.name or "", part.filename,
                                                   part.headers.get("Content-Type"), await part.read()))
        elif request.can_read_body:
            call.json = await request.json()
        call.at = self.now()
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        if any(stall(call) for stall in self._stalls):
            await self._stopping.wait()  # never answers (the bot's deadline has to end the wait)
        if call.path in self.cdn_chunked:
            return await self._stream(request, *self.cdn[call.path])
        response = self._respond(call)
        call.status = response.status
        return response

    @staticmethod
    async def _stream(request: web.Request, data: bytes, content_type: str) -> web.StreamResponse:
        """Chunked transfer, no Content-Length: the reader cannot know the size before reading."""
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(data), 64 * 1024):
            await response.write(data[start:start + 64 * 1024])
        await response.write_eof()
        return response

    def fail_once(self, predicate: Callable[[Call], bool], status: int) -> None:
        """Answer the next request matching `predicate` with an HTTP error, as Discord would."""
        self._failures.append((predicate, status))

    def fail_always(self, predicate: Callable[[Call], bool], status: int, times: int = 1000) -> None:
        """Answer the next `times` requests matching `predicate` with an HTTP error (an outage of that route)."""
        self._failures.extend([(predicate, status)] * times)

    def stall(self, predicate: Callable[[Call], bool]) -> None:
        """Never answer requests matching `predicate` (until the server stops)."""
        self._stalls.append(predicate)

    def _respond(self, call: Call) -> web.Response:
        path, method = call.path, call.method
        for failure in self._failures:
            if failure[0](call):
                self._failures.remove(failure)
                body = {"message": f"HTTP {failure[1]}", "code": 0}
                if failure[1] == 429:
                    body.update(retry_after=0.1, **{"global": False})
                return json_response(body, status=failure[1], headers=VIA)
        if path in self.cdn_redirects:
            raise web.HTTPFound(self.cdn_redirects[path])
        if path.startswith("/cdn/"):
            if path not in self.cdn:
                return web.Response(status=404, text="not found")
            data, content_type = self.cdn[path]
            return web.Response(body=data, headers={"Content-Type": content_type})
        bot_route = path.startswith("/api/") and "/interactions/" not in path and "/webhooks/" not in path
        if bot_route and call.auth != f"Bot {TOKEN}":  # interaction routes authenticate by their token
            return json_response({"message": "401: Unauthorized", "code": 0}, status=401)
        if path.endswith("/users/@me"):
            return json_response(user_payload(BOT_ID, "voicebot", bot=True))
        if path.endswith("/oauth2/applications/@me"):
            return json_response({"id": str(APP_ID), "name": "voicebot", "description": "", "icon": None,
                                  "bot_public": True, "bot_require_code_grant": False,
                                  "owner": user_payload(OWNER_ID, "owner"), "verify_key": "00", "flags": 0})
        if method == "PUT" and path.endswith("/commands"):
            return json_response([{**c, "id": str(snowflake()), "application_id": str(APP_ID),
                                   "description": c.get("description", ""), "version": "1"} for c in call.json])
        if path.endswith("/callback"):
            return self._callback(call)
        if "/webhooks/" in path:
            return self._webhook(call)
        return self._bot_route(call)

    def _limited(self, call: Call, kind: str, major: str) -> web.Response | dict[str, str]:
        """The rate limiter's verdict: a 429/500 answer, or the headers for a normal one."""
        verdict = self.ratelimits.check(kind, major, f"{call.method} {call.path} {bool(call.files)}",
                                        upload=bool(call.files))
        if verdict.refused is not None:
            return json_response(verdict.refused, status=verdict.status, headers=verdict.headers)
        return verdict.headers

    def _callback(self, call: Call) -> web.Response:
        interaction_id, token = call.path.split("/")[-3:-1]
        if not self.token_alive(token):
            return json_response({"message": "Unknown interaction", "code": 10062}, status=404, headers=VIA)
        data = (call.json or {}).get("data") or {}
        if call.json.get("type") in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            original = self._create(FakeMessage(snowflake(), CHANNEL_ID, "original", token, data.get("flags") or 0),
                                    call, call.content)
            self.originals[token] = original.id
        elif call.json.get("type") == UPDATE_MESSAGE and token in self.originals:
            self.messages[self.originals[token]].history.append((self.now(), call.content))
        return json_response({"interaction": {"id": interaction_id, "type": 2}})

    def _webhook(self, call: Call) -> web.Response:
        parts = call.path.split("/webhooks/", 1)[1].split("/")
        token = parts[1]
        if not self.token_alive(token):
            return json_response({"message": "Invalid Webhook Token", "code": 50027}, status=401, headers=VIA)
        limited = self._limited(call, "webhook", token)
        if isinstance(limited, web.Response):
            return limited
        if len(parts) == 2:  # POST: a follow-up
            info = self.tokens.get(token)
            if (too_large := self._too_large(call, info.upload_limit if info else DEFAULT_UPLOAD_LIMIT)) is not None:
                return too_large
            message = self._create(FakeMessage(snowflake(), CHANNEL_ID, "followup", token, call.flags), call,
                                   call.content)
            return json_response(self._payload(message), headers=limited)
        target = self.messages.get(self.originals.get(token, -1) if parts[3] == "@original" else int(parts[3]))
        if target is None or target.deleted:
            return json_response({"message": "Unknown Message", "code": 10008}, status=404, headers=limited)
        return self._change(call, target, limited)

    def _bot_route(self, call: Call) -> web.Response:
        path, method = call.path, call.method
        if method == "POST" and path.endswith("/users/@me/channels"):
            limited = self._limited(call, "dm_open", "@me")
            if isinstance(limited, web.Response):
                return limited
            user_id = int(call.json["recipient_id"])
            channel_id = self.dm_channels.setdefault(user_id, snowflake())
            return json_response({"id": str(channel_id), "type": 1, "last_message_id": None,
                                  "recipients": [user_payload(user_id, "alice")]}, headers=limited)
        parts = path.split("/channels/", 1)[1].split("/") if "/channels/" in path else []
        if len(parts) < 2 or parts[1] != "messages":
            return json_response({"message": "404: Not Found", "code": 0}, status=404)
        channel_id = int(parts[0])
        dm_user = next((user for user, channel in self.dm_channels.items() if channel == channel_id), None)
        if method == "POST" and len(parts) == 2:
            limited = self._limited(call, "channel_messages", str(channel_id))
            if isinstance(limited, web.Response):
                return limited
            if dm_user is not None and dm_user in self.refuse_dms:
                return json_response({"message": "Cannot send messages to this user", "code": 50007}, status=403,
                                     headers=limited)
            if dm_user is None and (self.refuse_channel or channel_id != CHANNEL_ID):
                return json_response({"message": "Missing Permissions", "code": 50013}, status=403, headers=limited)
            limit = self.dm_upload_limit if dm_user is not None else self.guild_upload_limit
            if (too_large := self._too_large(call, limit)) is not None:
                return too_large
            kind = "dm" if dm_user is not None else "channel"
            message = self._create(FakeMessage(snowflake(), channel_id, kind), call, call.content)
            return json_response(self._payload(message), headers=limited)
        limited = self._limited(call, "message_edits", str(channel_id))
        if isinstance(limited, web.Response):
            return limited
        target = self.messages.get(int(parts[2])) if len(parts) == 3 else None
        if target is None or target.deleted or target.channel_id != channel_id:
            return json_response({"message": "Unknown Message", "code": 10008}, status=404, headers=limited)
        if target.kind not in ("channel", "dm"):  # interaction messages are edited through their token
            return json_response({"message": "Cannot edit a message authored by another user", "code": 50005},
                                 status=403, headers=limited)
        return self._change(call, target, limited)

    def _change(self, call: Call, target: FakeMessage, headers: dict[str, str]) -> web.Response:
        if call.method == "DELETE":
            target.deleted = True
            target.history.append((self.now(), ""))
            return web.Response(status=204, headers=headers)
        target.history.append((self.now(), call.content))
        return json_response(self._payload(target), headers=headers)

    def _create(self, message: FakeMessage, call: Call, content: str) -> FakeMessage:
        message.files = call.files
        message.history.append((self.now(), content))
        self.messages[message.id] = message
        call.created = message
        return message

    def _too_large(self, call: Call, limit: int) -> web.Response | None:
        if sum(len(f.data) for f in call.files) > limit:
            return json_response({"message": "Request entity too large", "code": 40005}, status=413, headers=VIA)
        return None

    def _payload(self, message: FakeMessage) -> dict[str, Any]:
        out = message_payload(message.id, message.content, channel_id=message.channel_id, flags=message.flags)
        out["attachments"] = [{"id": str(snowflake()), "filename": f.filename, "size": len(f.data),
                               "url": f"{self.base}/cdn/out/{f.filename}", "proxy_url": "x"} for f in message.files]
        return out

    # --- what users see ----------------------------------------------------------------------------------
    def original(self, payload: dict[str, Any]) -> FakeMessage:
        return self.messages[self.originals[payload["token"]]]

    def messages_of(self, user_id: int) -> list[FakeMessage]:
        """Every message the user can see that was meant for them: their interaction's messages, channel messages
        mentioning them, and their DMs."""
        tokens = {token for token, info in self.tokens.items() if info.user_id == user_id}
        dm = self.dm_channels.get(user_id)
        return [message for message in self.messages.values()
                if message.token in tokens or (message.kind == "dm" and message.channel_id == dm)
                or (message.kind == "channel" and message.history[0][1].startswith(f"<@{user_id}>"))]

    async def wait_for(self, predicate: Callable[[Call], bool], timeout: float = 10.0) -> Call:
        """The first recorded call matching `predicate`, waiting for it if need be."""

        async def first() -> Call:
            async with self._changed:
                while True:
                    for call in self.calls:
                        if predicate(call):
                            return call
                    await self._changed.wait()

        return await asyncio.wait_for(first(), timeout)

    def calls_to(self, predicate: Callable[[Call], bool]) -> list[Call]:
        return [c for c in self.calls if predicate(c)]

    # --- attachments --------------------------------------------------------------------------------------
    def attachment(self, data: bytes, filename: str = "reference.wav", content_type: str | None = "audio/wav", *,
                   size: int | None = None, voice_message: bool = False, chunked: bool = False,
                   redirect_to: str | None = None) -> dict[str, Any]:
        """Serve `data` from the fake CDN (chunked: without Content-Length; `redirect_to`: answer with a 302 there
        instead) and return the attachment payload pointing at it."""
        attachment_id = str(snowflake())
        path = f"/cdn/attachments/{CHANNEL_ID}/{attachment_id}/{filename}"
        self.cdn[path] = (data, content_type or "application/octet-stream")
        if chunked:
            self.cdn_chunked.add(path)
        if redirect_to is not None:
            self.cdn_redirects[path] = redirect_to
        payload: dict[str, Any] = {"id": attachment_id, "filename": filename,
                                   "size": len(data) if size is None else size,
                                   "url": self.base + path, "proxy_url": self.base + path}
        if content_type is not None:
            payload["content_type"] = content_type
        if voice_message:
            payload.update(duration_secs=3.0, waveform="AAAA", flags=0)
        return payload


# --- interaction payloads -----------------------------------------------------------------------------------
@dataclass
class Invoker:
    """Who sends an interaction. Fresh ids per test keep the commands layer's cooldowns apart."""

    user_id: int = field(default_factory=snowflake)
    permissions: int = 0
    name: str = "alice"


def interaction(itype: int, data: dict[str, Any], invoker: Invoker, *,
                upload_limit: int = DEFAULT_UPLOAD_LIMIT, age_s: float = 0.0,
                message: dict[str, Any] | None = None) -> dict[str, Any]:
    interaction_id = snowflake(age_s)
    return ({"message": message} if message is not None else {}) | {"id": str(interaction_id), "application_id": str(APP_ID), "type": itype, "data": data,
            "token": f"token-{interaction_id}", "version": 1, "guild_id": str(GUILD_ID),
            "channel_id": str(CHANNEL_ID),
            "channel": {"id": str(CHANNEL_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "general",
                        "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None},
            "member": {"user": user_payload(invoker.user_id, invoker.name), "roles": [],
                       "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False, "flags": 0,
                       "permissions": str(invoker.permissions)},
            "app_permissions": str(BOT_PERMISSIONS), "locale": "en-US", "guild_locale": "en-US",
            "entitlements": [], "context": 0, "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "attachment_size_limit": upload_limit}


def slash(name: str, options: list[dict[str, Any]], *, attachments: list[dict] | None = None) -> dict[str, Any]:
    resolved = {"attachments": {a["id"]: a for a in attachments}} if attachments else {}
    return {"id": str(snowflake()), "name": name, "type": 1, "guild_id": str(GUILD_ID), "options": options,
            "resolved": resolved}


def subcommand(group: str, name: str, options: list[dict[str, Any]], *,
               attachments: list[dict] | None = None, users: list[dict] | None = None) -> dict[str, Any]:
    """`data` of `/group name ...`; `users` resolves USER options (type 6)."""
    data = slash(group, [{"name": name, "type": 1, "options": options}], attachments=attachments)
    if users:
        data["resolved"]["users"] = {user["id"]: user for user in users}
    return data


def option(name: str, value: Any) -> dict[str, Any]:
    """A STRING (3) or INTEGER (4) option."""
    return {"name": name, "type": 4 if isinstance(value, int) else 3, "value": value}


def components_of(call: Call) -> list[dict[str, Any]]:
    """The buttons a callback, edit or follow-up put on its message (flattened out of their action rows)."""
    body = call.json if isinstance(call.json, dict) else {}
    data = body.get("data", body) or {}
    return [item for row in data.get("components") or [] for item in row.get("components", [])]


def clone_options(attachment: dict[str, Any] | None, text: str, **extra: str) -> dict[str, Any]:
    """`data` of a /clone invocation: reference (when given), text, then any of ref_text/language/model."""
    options: list[dict[str, Any]] = []
    if attachment is not None:
        options.append({"name": "reference", "type": 11, "value": attachment["id"]})
    options.append({"name": "text", "type": 3, "value": text})
    options += [{"name": key, "type": 3, "value": value} for key, value in extra.items()]
    return slash("clone", options, attachments=[attachment] if attachment else None)


def message_command(name: str, target: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(snowflake()), "name": name, "type": 3, "guild_id": str(GUILD_ID), "target_id": target["id"],
            "resolved": {"messages": {target["id"]: target}}}


def modal_submit(modal: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """Answer a modal the bot sent (`callback.json["data"]`), filling its text inputs by label."""
    rows = []
    for row in modal["components"]:
        component = row.get("component") or row["components"][0]  # Label (type 18) or ActionRow (type 1)
        label = row.get("label") or component.get("label")
        value = values.get(label, "")
        item = {"type": 4, "custom_id": component["custom_id"], "value": value}
        rows.append({"type": 18, "component": item} if row["type"] == 18 else {"type": 1, "components": [item]})
    return {"custom_id": modal["custom_id"], "components": rows}


# --- predicates -------------------------------------------------------------------------------------------
def callback_of(payload: dict[str, Any]) -> Callable[[Call], bool]:
    """The interaction's initial response (defer, message, modal or autocomplete)."""
    return lambda c: c.path.endswith(f"/interactions/{payload['id']}/{payload['token']}/callback")


def followup_of(payload: dict[str, Any]) -> Callable[[Call], bool]:
    return lambda c: c.method == "POST" and c.path.endswith(f"/webhooks/{APP_ID}/{payload['token']}")


def _original(payload: dict[str, Any]) -> str:
    return f"/webhooks/{APP_ID}/{payload['token']}/messages/@original"


def edit_of(payload: dict[str, Any]) -> Callable[[Call], bool]:
    """An edit of the original response (the progress message)."""
    return lambda c: c.method == "PATCH" and c.path.endswith(_original(payload))


def delete_of(payload: dict[str, Any]) -> Callable[[Call], bool]:
    return lambda c: c.method == "DELETE" and c.path.endswith(_original(payload))


def cdn_download(attachment: dict[str, Any]) -> Callable[[Call], bool]:
    return lambda c: c.method == "GET" and attachment["url"].endswith(c.path)
