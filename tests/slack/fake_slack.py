"""A local fake of the parts of Slack the bot talks to, served by aiohttp in the test's event loop.

It answers the Web API methods the bot calls (`/api/<method>`, `files.info` included), hosts private files
(`/files-pri/...`, which answer an HTML login page to a wrong token, as Slack does, and may redirect), takes
`files.getUploadURLExternal` uploads (`/upload/...`), records `response_url` posts (`/response_url/...`), keeps
each open modal's hash (`views.update` with a stale one is refused, as Slack does) and runs a Socket Mode
WebSocket (`/link`) that tests can push envelopes through. Every request is recorded in `calls` for assertions.

Slack's rate tiers are modelled when a test sets `limits` (e.g. `PUBLISHED_LIMITS`): at most `calls` per
`window_s` per method and workspace (per channel for `chat.postMessage`), beyond that a 429 with `Retry-After`.
`speed` runs Slack's clock faster than the real one (speed 20: a one-minute window lasts 3 s), so a load test
takes seconds; the bot's own budgets are then shrunk by the same factor. `faults` inject failures: a 429 or a
500 for the n-th, every n-th or every matching request.

The bot may fetch files only from `file_origins` (Slack's real file host is HTTPS-only; the fake's is plain
HTTP on 127.0.0.1 and is handed to `SlackServices` by the harness). `HostileHost` is another origin on the same
machine that serves a valid clip to anyone and records who asked: the bot must never reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-1-test-app-token"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_USER_ID = "UBOT"
TEAM_ID = "T1"

# Every scope the manifest asks for; a test removes one to see the bot name it.
ALL_SCOPES = frozenset({"commands", "chat:write", "files:read", "files:write", "im:write", "app_mentions:read",
                        "users:read"})
# The scope each Web API method needs (as Slack reports it in `missing_scope` errors).
METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.delete": "chat:write",
    "conversations.open": "im:write",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "files.info": "files:read",
    "users.info": "users:read",
}
JSON_FIELDS = ("view", "blocks", "files", "attachments")


@dataclass(frozen=True)
class Limit:
    """At most `calls` within any `window_s` of Slack's clock, per workspace (or per channel)."""

    calls: int
    window_s: float
    per_channel: bool = False


TIER_3 = Limit(50, 60.0)
TIER_4 = Limit(100, 60.0)
# Slack's published tiers for what the bot calls; chat.postMessage: about 1 a second per channel, short bursts.
PUBLISHED_LIMITS = {
    "chat.postMessage": Limit(2, 1.0, per_channel=True),
    "chat.update": TIER_3, "chat.delete": TIER_3, "conversations.open": TIER_3,
    "chat.postEphemeral": TIER_4, "files.getUploadURLExternal": TIER_4, "files.completeUploadExternal": TIER_4,
    "files.info": TIER_4, "users.info": TIER_4, "views.open": TIER_4, "views.update": TIER_4,
}


@dataclass
class Call:
    """One request the fake received."""

    path: str
    method: str  # the Web API method for /api/ calls, else ""
    args: dict[str, Any]
    auth: str
    raw: bytes
    at: float = 0.0  # Slack's clock (seconds) when it arrived
    reply: dict[str, Any] | None = None  # the JSON the fake answered a Web API call with
    status: int = 200
    refused_by: str | None = None  # "limit" (a rate tier) or "fault" (injected)


@dataclass
class Fault:
    """Answer `status` to requests for `target`: a Web API method, "*" (every Web API method) or a path prefix
    ("/upload/"). `every`: only each n-th matching request; `times`: at most that many (None: no end)."""

    target: str
    status: int = 429
    error: str | None = None  # Slack's error code in the JSON body (Web API methods)
    retry_after: int = 0
    every: int = 1
    times: int | None = None
    when: Callable[[Call], bool] | None = None
    matched: int = 0
    fired: int = 0

    def fires(self, call: Call) -> bool:
        hit = (self.target == call.method or (self.target == "*" and bool(call.method))
               or (self.target.startswith("/") and call.path.startswith(self.target)))
        if not hit or (self.when is not None and not self.when(call)):
            return False
        self.matched += 1
        if self.matched % self.every or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


@dataclass
class HostedFile:
    data: bytes
    content_type: str = "audio/wav"


@dataclass
class FakeSlack:
    """State and behaviour of the fake; `start()` binds it to a free port on 127.0.0.1."""

    scopes: set[str] = field(default_factory=lambda: set(ALL_SCOPES))
    admins: set[str] = field(default_factory=lambda: {"UADMIN"})
    owners: set[str] = field(default_factory=lambda: {"UOWNER"})
    # method -> Slack error code to answer with (e.g. {"chat.postMessage": "not_in_channel"})
    fail: dict[str, str] = field(default_factory=dict)
    files: dict[str, HostedFile] = field(default_factory=dict)  # URL path -> content
    file_objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # file id -> what files.info answers
    calls: list[Call] = field(default_factory=list)
    redirects: dict[str, str] = field(default_factory=dict)  # file path -> Location the file host answers
    limits: dict[str, Limit] = field(default_factory=dict)  # method -> its rate tier (none: unlimited)
    speed: float = 1.0  # Slack seconds per real second
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base = ""
        self._ts = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self.socket_replies: list[dict[str, Any]] = []  # what the bot sent back over Socket Mode
        self._socket_open = asyncio.Event()
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self.view_hashes: dict[str, str] = {}  # view id -> its current hash (views.update checks it)

    def now(self) -> float:
        """Slack's clock: the event loop's, `speed` times faster."""
        return asyncio.get_running_loop().time() * self.speed

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> FakeSlack:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/link", self._websocket)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        for ws in self._sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    @property
    def file_origins(self) -> tuple[str, ...]:
        """Where this fake serves private files: the bot's allowed file host in tests (Slack's is HTTPS-only)."""
        return (self.base,)

    # ---------------------------------------------------------------- test helpers
    def host_file(self, name: str, data: bytes, content_type: str = "audio/wav", *, file_id: str = "F0REF",
                  mimetype: str | None = None, user: str = "U1") -> dict[str, Any]:
        """Host `data` as a private file and return the file object Slack puts in payloads."""
        url = f"{self.base}/files-pri/{TEAM_ID}-{file_id}/{urllib.parse.quote(name)}"
        self.files[urllib.parse.unquote(urllib.parse.urlparse(url).path)] = HostedFile(data, content_type)
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        self.file_objects[file_id] = {
            "id": file_id, "name": name, "title": name, "mimetype": mimetype or content_type, "filetype": ext,
            "size": len(data), "url_private": url, "url_private_download": f"{url}?download=1", "user": user}
        return dict(self.file_objects[file_id])

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def accepted(self, method: str) -> list[Call]:
        """The calls of `method` that Slack carried out (not refused by a rate tier or a fault)."""
        return [c for c in self.of(method) if c.refused_by is None]

    def methods(self) -> list[str]:
        return [c.method or c.path for c in self.calls]

    async def wait_for(self, pred: Callable[[Call], bool] | str, timeout: float = 10.0) -> Call:
        """The first recorded call matching `pred` (a predicate, or a Web API method name), waiting for it."""
        match = (lambda c: c.method == pred) if isinstance(pred, str) else pred

        def found() -> Call | None:
            return next((c for c in self.calls if match(c)), None)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout)
            except TimeoutError:
                raise AssertionError(f"timed out waiting; saw {self.methods()}") from None
        return found()  # type: ignore[return-value]

    async def push_envelope(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Send a Socket Mode envelope to the connected bot and wait for its acknowledgement."""
        await asyncio.wait_for(self._socket_open.wait(), 10)
        await self._sockets[-1].send_json(envelope)
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(
                lambda: any(r.get("envelope_id") == envelope["envelope_id"] for r in self.socket_replies)), 10)
        return next(r for r in self.socket_replies if r.get("envelope_id") == envelope["envelope_id"])

    # ---------------------------------------------------------------- HTTP
    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        args: dict[str, Any] = dict(request.query)
        ctype = request.content_type
        if ctype == "application/json" and raw:
            args.update(json.loads(raw))
        elif ctype == "application/x-www-form-urlencoded" and raw:
            args.update(dict(urllib.parse.parse_qsl(raw.decode())))
        for key in JSON_FIELDS:
            if isinstance(args.get(key), str):
                with contextlib.suppress(ValueError):
                    args[key] = json.loads(args[key])
        path = request.path
        method = path.removeprefix("/api/") if path.startswith("/api/") else ""
        call = Call(path=path, method=method, args=args, auth=request.headers.get("Authorization", ""), raw=raw,
                    at=self.now())
        response = self._fault(call) or self._respond(call)
        call.status = response.status
        if response.content_type == "application/json" and response.body is not None:
            call.reply = json.loads(response.body)  # type: ignore[arg-type]
        await self._record(call)
        return response

    def _fault(self, call: Call) -> web.Response | None:
        fault = next((f for f in self.faults if f.fires(call)), None)
        if fault is None:
            return None
        call.refused_by = "fault"
        headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
        if not call.method:
            return web.Response(status=fault.status, text="upstream error", headers=headers)
        error = fault.error or ("ratelimited" if fault.status == 429 else "internal_error")
        return web.json_response({"ok": False, "error": error}, status=fault.status, headers=headers)

    def _over_limit(self, call: Call) -> web.Response | None:
        """A 429 when this call would exceed its method's tier; else the call counts against the tier."""
        limit = self.limits.get(call.method)
        if limit is None:
            return None
        window = self._windows.setdefault((call.method, call.args.get("channel", "") if limit.per_channel else ""),
                                          deque())
        while window and call.at - window[0] >= limit.window_s:
            window.popleft()
        if len(window) < limit.calls:
            window.append(call.at)
            return None
        call.refused_by = "limit"
        wait_real_s = (window[0] + limit.window_s - call.at) / self.speed
        return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                 headers={"Retry-After": str(math.ceil(wait_real_s))})

    def _respond(self, call: Call) -> web.Response:
        path = call.path
        if path.startswith("/files-pri/"):
            if path in self.redirects:
                return web.Response(status=302, headers={"Location": self.redirects[path]})
            hosted = self.files.get(path)
            if call.auth != f"Bearer {BOT_TOKEN}" or "files:read" not in self.scopes:
                # What Slack does: a 200 with the sign-in page instead of the file.
                return web.Response(text="<!DOCTYPE html><html><body>Sign in to Slack</body></html>",
                                    content_type="text/html")
            if hosted is None:
                return web.Response(status=404, text="not found")
            return web.Response(body=hosted.data, content_type=hosted.content_type)
        if path.startswith("/upload/"):
            return web.Response(text=f"OK - {len(call.raw)}")
        if path.startswith("/response_url/"):
            return web.Response(text="ok")
        if not call.method:
            return web.Response(status=404)
        return self._api(call)

    def _api(self, call: Call) -> web.Response:
        method, a = call.method, call.args

        def ok(**data: Any) -> web.Response:
            return web.json_response({"ok": True, **data})

        def error(code: str, **data: Any) -> web.Response:
            return web.json_response({"ok": False, "error": code, **data})

        if method == "apps.connections.open":
            if call.auth != f"Bearer {APP_TOKEN}":
                return error("invalid_auth")
            return ok(url=f"{self.base.replace('http', 'ws', 1)}/link")
        if call.auth != f"Bearer {BOT_TOKEN}":
            return error("invalid_auth")
        if (limited := self._over_limit(call)) is not None:
            return limited
        if method in self.fail:
            return error(self.fail[method])
        needed = METHOD_SCOPES.get(method)
        if needed and needed not in self.scopes:
            return error("missing_scope", needed=needed, provided=",".join(sorted(self.scopes)))
        if method == "auth.test":
            return ok(url="https://t.example.slack.com/", team="Test", user="voicebot", team_id=TEAM_ID,
                      user_id=BOT_USER_ID, bot_id="B1", is_enterprise_install=False)
        if method in ("views.open", "views.push"):
            view = {**a["view"], "id": f"V{next(self._ts)}", "hash": f"h{next(self._ts)}"}
            self.view_hashes[view["id"]] = view["hash"]
            return ok(view=view)
        if method == "views.update":  # like Slack: a stale `hash` means the view changed meanwhile
            view_id = a.get("view_id")
            if view_id not in self.view_hashes:
                return error("not_found")
            if a.get("hash") and a["hash"] != self.view_hashes[view_id]:
                return error("hash_conflict")
            self.view_hashes[view_id] = f"h{next(self._ts)}"
            return ok(view={**a["view"], "id": view_id, "hash": self.view_hashes[view_id]})
        if method == "chat.postMessage":
            ts = f"{int(time.time())}.{next(self._ts):06d}"
            return ok(channel=a.get("channel"), ts=ts, message={"text": a.get("text"), "ts": ts})
        if method == "chat.update":
            return ok(channel=a.get("channel"), ts=a.get("ts"), text=a.get("text"))
        if method == "chat.delete":
            return ok(channel=a.get("channel"), ts=a.get("ts"))
        if method == "conversations.open":
            return ok(channel={"id": f"D{a.get('users')}"})
        if method == "chat.postEphemeral":
            return ok(message_ts=f"{int(time.time())}.{next(self._ts):06d}")
        if method == "files.getUploadURLExternal":
            return ok(upload_url=f"{self.base}/upload/v1/U{next(self._ts)}", file_id=f"F0OUT{next(self._ts)}")
        if method == "files.completeUploadExternal":
            files = a["files"] if isinstance(a["files"], list) else json.loads(a["files"])
            return ok(files=[{"id": f["id"], "title": f.get("title")} for f in files])
        if method == "files.info":
            if a.get("file") not in self.file_objects:
                return error("file_not_found")
            return ok(file=self.file_objects[a["file"]])
        if method == "users.info":
            user = a["user"]
            return ok(user={"id": user, "is_admin": user in self.admins or user in self.owners,
                            "is_owner": user in self.owners, "is_primary_owner": False})
        return error("unknown_method")

    # ---------------------------------------------------------------- Socket Mode
    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A1"}})
        self._socket_open.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                async with self._changed:
                    self.socket_replies.append(json.loads(msg.data))
                    self._changed.notify_all()
        return ws


@dataclass
class HostileHost:
    """A file host that is not Slack's: it serves `clip` to anyone and records every request (and its
    Authorization header) in `calls`."""

    clip: bytes
    calls: list[Call] = field(default_factory=list)

    async def start(self) -> HostileHost:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        await self._runner.cleanup()

    def url(self, name: str = "voice.wav") -> str:
        return f"{self.base}/files-pri/{TEAM_ID}-F0EVIL/{name}"

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls.append(Call(path=request.path, method="", args=dict(request.query),
                               auth=request.headers.get("Authorization", ""), raw=await request.read()))
        return web.Response(body=self.clip, content_type="audio/wav")
