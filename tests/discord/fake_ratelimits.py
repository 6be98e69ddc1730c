"""Discord's rate limits as the fake API enforces them: per-route buckets with the X-RateLimit headers Discord
sends, 429s with `retry_after`, a global limit, and injected trouble (shared-resource and global 429s, 500s on
uploads) at fixed rates so a load test meets each of them.

Headers as documented (https://discord.com/developers/docs/topics/rate-limits): every limited response carries
X-RateLimit-Limit, -Remaining, -Reset (epoch seconds), -Reset-After (seconds) and -Bucket; a 429 adds
Retry-After, X-RateLimit-Scope (user, shared or global) and, for the global limit, X-RateLimit-Global, with the
JSON body {"message", "retry_after", "global"}. Discord's edge adds `Via`; discord.py treats a 429 without it as
a Cloudflare ban, so every answer here has it.

Windows are Discord's limits on a faster clock (a bucket of 5 per 5 s here is 5 per 1 s) so a test takes seconds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

VIA = {"Via": "1.1 google"}


@dataclass(frozen=True)
class Limit:
    requests: int
    window_s: float


# route kind -> limit; bot-token kinds also count against the global limit (interaction routes do not).
DEFAULT_LIMITS = {
    "webhook": Limit(5, 2.0),  # interaction follow-ups and edits of the original, per token
    "channel_messages": Limit(5, 1.0),  # POST /channels/{id}/messages, per channel (Discord: 5 per 5 s)
    "message_edits": Limit(5, 1.0),  # PATCH/DELETE /channels/{id}/messages/{id}, per channel
    "dm_open": Limit(5, 1.0),  # POST /users/@me/channels
}
BOT_ROUTES = {"channel_messages", "message_edits", "dm_open"}
GLOBAL = Limit(50, 1.0)


@dataclass
class _Window:
    started: float
    used: int = 0


@dataclass
class Verdict:
    """Headers for the answer, and a 429 body when the request is refused."""

    headers: dict[str, str]
    refused: dict | None = None
    status: int = 429


@dataclass
class Trouble:
    """Injected failures, each at most once per request target, so retries get through: every `exhaust_every`th
    limited request finds its bucket used up by another client of the same bot (another process or shard: a
    per-route 429 with Remaining 0, which discord.py's own bookkeeping cannot foresee), every `shared_429_every`th
    a shared-resource 429, every `global_429_every`th bot-token request a global 429, every `upload_500_every`th
    upload a 500. 0 turns one off."""

    exhaust_every: int = 0
    shared_429_every: int = 0
    global_429_every: int = 0
    upload_500_every: int = 0
    retry_after_s: float = 0.2
    counts: dict[str, int] = field(default_factory=dict)
    hit: set[tuple[str, str]] = field(default_factory=set)
    injected: dict[str, int] = field(default_factory=dict)

    def pick(self, kind: str, every: int, target: str) -> bool:
        if every <= 0 or (kind, target) in self.hit:
            return False
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] % every:
            return False
        self.hit.add((kind, target))
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return True


class RateLimiter:
    """Fixed windows per bucket (route kind + major parameter) on the fake's clock, plus the global limit."""

    def __init__(self, clock: Callable[[], float], limits: dict[str, Limit] | None = None,
                 trouble: Trouble | None = None) -> None:
        self.clock = clock
        self.limits = limits if limits is not None else dict(DEFAULT_LIMITS)
        self.trouble = trouble or Trouble()
        self._windows: dict[str, _Window] = {}
        self._global_until = 0.0
        self.refused: dict[str, int] = {}  # scope -> 429s sent

    def check(self, kind: str, major: str, target: str, *, upload: bool) -> Verdict:
        now = self.clock()
        limit = self.limits.get(kind)
        headers = dict(VIA)
        if kind in BOT_ROUTES:
            if now < self._global_until:
                return self._refuse("global", self._global_until - now, headers)
            glob = self._window("global", GLOBAL, now)
            if glob.used >= GLOBAL.requests or self.trouble.pick("global", self.trouble.global_429_every, target):
                wait = max(glob.started + GLOBAL.window_s - now, self.trouble.retry_after_s)
                self._global_until = now + wait
                return self._refuse("global", wait, headers)
            glob.used += 1
        if limit is None:
            return Verdict(headers)
        bucket = f"{kind}:{major}"
        window = self._window(bucket, limit, now)
        if self.trouble.pick("exhausted", self.trouble.exhaust_every, target):
            window.used = limit.requests
        reset_after = window.started + limit.window_s - now
        headers.update({
            "X-RateLimit-Limit": str(limit.requests),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": hashlib.sha1(kind.encode()).hexdigest()[:16],
        })
        if window.used >= limit.requests:
            headers["X-RateLimit-Remaining"] = "0"
            return self._refuse("user", reset_after, headers)
        if self.trouble.pick("shared", self.trouble.shared_429_every, target):
            headers["X-RateLimit-Remaining"] = str(limit.requests - window.used)
            return self._refuse("shared", self.trouble.retry_after_s, headers)
        if upload and self.trouble.pick("upload_500", self.trouble.upload_500_every, target):
            return Verdict(headers, {"message": "500: Internal Server Error", "code": 0}, status=500)
        window.used += 1
        headers["X-RateLimit-Remaining"] = str(limit.requests - window.used)
        return Verdict(headers)

    def _window(self, key: str, limit: Limit, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None or now >= window.started + limit.window_s:
            window = self._windows[key] = _Window(now)
        return window

    def _refuse(self, scope: str, retry_after: float, headers: dict[str, str]) -> Verdict:
        self.refused[scope] = self.refused.get(scope, 0) + 1
        headers.update({"Retry-After": str(max(1, round(retry_after))), "X-RateLimit-Scope": scope})
        if scope == "global":
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": round(retry_after, 3),
                "global": scope == "global"}
        return Verdict(headers, body)
