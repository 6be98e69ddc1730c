"""What the Slack listeners share: the clone service (queue, limits, backends), the voice library, the bot token
and where it may go, the budgets of Slack calls (`pacing`), the results no route could deliver
(`undelivered`), the tasks still delivering a result (so shutdown can wait for them), the requests already
handled (so a re-delivered or replayed one runs once) and the Slack problems admins should see in /tts-health.

Listeners get this object through `register(app, services)` closures, not through Bolt's `context`: Bolt
deep-copies the context for lazy listeners, which would copy the job queue with it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from cachetools import LRUCache, TTLCache

from backend.errors import VoicebotError
from bot.slack.files import SLACK_FILE_ORIGINS
from bot.slack.pacing import Pacer
from bot.slack.slack_errors import SlackProblem
from commands.clone import CloneService
from commands.settings import CommandSettings
from commands.undelivered import UndeliveredStore
from commands.voice_library import VoiceLibrary

log = structlog.get_logger(__name__)

# Slack wants the answer to a modal submission within 3 s. Up to this long the submission waits for the clip to
# be downloaded and checked, so a bad clip is shown on the form (which stays open); past it the form closes and
# the outcome arrives as a message.
ACK_BUDGET_S = 2.0
# How long a handled request is remembered: past Slack's 5-minute signature window (older replays fail the
# signature check) and its event retries (after about 1 and 5 minutes).
SEEN_TTL_S = 600.0
SEEN_MAX = 20_000


@dataclass(frozen=True)
class NotedProblem:
    """The last time a Slack problem of one kind was shown to a user, with its operator detail."""

    text: str
    count: int
    at: float  # time.time()


@dataclass(eq=False)
class SlackServices:
    clone: CloneService
    library: VoiceLibrary
    bot_token: str
    ack_budget_s: float = ACK_BUDGET_S
    file_origins: tuple[str, ...] = SLACK_FILE_ORIGINS  # where the bot token may fetch files (tests: a fake)
    pacer: Pacer = field(default_factory=Pacer)
    # results no route could deliver; None: the voice library's (forget-me deletes a user's from it)
    undelivered: UndeliveredStore = None  # type: ignore[assignment]
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _seen: TTLCache[str, bool] = field(default_factory=lambda: TTLCache(SEEN_MAX, SEEN_TTL_S))
    _problems: LRUCache[str, NotedProblem] = field(default_factory=lambda: LRUCache(8))

    def __post_init__(self) -> None:
        if self.undelivered is None:
            self.undelivered = self.library.undelivered

    @property
    def settings(self) -> CommandSettings:
        return self.clone.settings

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run a clone flow in the background, tracked until it ends (see `idle`)."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def idle(self, timeout: float | None = None) -> bool:
        """Wait until every flow and pending progress edit has ended; False if some still run at `timeout`."""

        async def settle() -> None:
            while self._tasks:
                await asyncio.wait(set(self._tasks))
            await self.clone.queue.flush()

        try:
            await asyncio.wait_for(settle(), timeout)
        except TimeoutError:
            return False
        return True

    def seen(self, key: str) -> bool:
        return key in self._seen

    def first_time(self, key: str) -> bool:
        """True the first time `key` is seen (within `SEEN_TTL_S`): Slack re-delivers an event it thinks was not
        acknowledged, and a signed request replayed within its signature window must not run twice."""
        if key in self._seen:
            return False
        self._seen[key] = True
        return True

    def note(self, error: VoicebotError, **context: Any) -> None:
        """A user was just shown `error.message`. Its operator detail, if any, goes to the log (redacted) and,
        for Slack's own problems (a missing scope, a rejected token, a file off Slack), to /tts-health."""
        if error.detail is None:
            return
        log.warning("slack.problem", code=error.code, detail=error.operator_text, **context)
        if isinstance(error, SlackProblem):
            previous = self._problems.get(error.code)
            self._problems[error.code] = NotedProblem(error.operator_text, previous.count + 1 if previous else 1,
                                                      time.time())

    def problems(self) -> list[NotedProblem]:
        """Recent Slack problems, newest first."""
        return sorted(self._problems.values(), key=lambda problem: problem.at, reverse=True)
