"""How fast the bot may call Slack, so a busy workspace stays within Slack's published rate tiers.

Slack limits each Web API method per workspace (`chat.update` / `chat.delete`: Tier 3, about 50 a minute) and
`chat.postMessage` to about one message a second per channel. Thirty users at once made ~850 `chat.update`
calls a minute without pacing; retrying 429s alone does not help then (every retry lands in the same full
window). So:

- each progress message is edited at most once every `edit_interval_s` (`commands.progress_coalescer`: the
  latest state wins, the final one always lands),
- all edits and deletions of one workspace share one `edits` budget below Tier 3,
- the posts of one channel share one `posts` budget of about one a second.

The budgets are aiolimiter's leaky buckets: at most `burst` calls at once, then `burst / period_s` a second.
In any window of `period_s * k` seconds at most `burst * (k + 1)` calls pass: 5 + 40 = 45 a minute for edits.
What still gets a 429 is retried by slack_sdk (`bot.slack.web_client`). Tests shrink every number together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter
from cachetools import LRUCache


@dataclass(frozen=True)
class Rate:
    """`burst` calls at once, refilled at `burst / period_s` a second."""

    burst: int
    period_s: float

    def limiter(self) -> AsyncLimiter:
        return AsyncLimiter(self.burst, self.period_s)


@dataclass(frozen=True)
class Pacing:
    """Intervals, budgets and deadlines of the bot's Slack calls."""

    edit_interval_s: float = 2.0  # per progress message
    edits: Rate = Rate(5, 7.5)  # per workspace: 40 a minute, at most 45 in any minute (Tier 3: ~50)
    posts: Rate = Rate(1, 1.0)  # chat.postMessage per channel
    upload_attempts: int = 3  # the three-step upload, as a whole
    upload_retry_wait_s: float = 2.0  # before a whole upload is tried again (doubling)
    route_deadline_s: float = 120.0  # one delivery route (thread, DM), retries included


@dataclass(eq=False)
class Pacer:
    """The budgets in force, one per workspace or channel (bounded: the least recently used is forgotten)."""

    pacing: Pacing = field(default_factory=Pacing)
    _edits: LRUCache[str, AsyncLimiter] = field(default_factory=lambda: LRUCache(1024))
    _posts: LRUCache[tuple[str, str], AsyncLimiter] = field(default_factory=lambda: LRUCache(4096))

    def edits(self, team: str) -> AsyncLimiter:
        """`chat.update` and `chat.delete` of one workspace."""
        limiter = self._edits.get(team)
        if limiter is None:
            limiter = self._edits[team] = self.pacing.edits.limiter()
        return limiter

    def posts(self, team: str, channel: str) -> AsyncLimiter:
        """`chat.postMessage` into one channel."""
        key = (team, channel)
        limiter = self._posts.get(key)
        if limiter is None:
            limiter = self._posts[key] = self.pacing.posts.limiter()
        return limiter
