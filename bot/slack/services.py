"""What the Slack listeners share: the clone service (queue, limits, backends), the bot token and the tasks
still delivering a result, so shutdown can wait for them.

Listeners get this object through `register(app, services)` closures, not through Bolt's `context`: Bolt
deep-copies the context for lazy listeners, which would copy the job queue with it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from commands.clone import CloneService
from commands.settings import CommandSettings

log = structlog.get_logger(__name__)

# Slack wants the answer to a modal submission within 3 s. Up to this long the submission waits for the clip to
# be downloaded and checked, so a bad clip is shown on the form (which stays open); past it the form closes and
# the outcome arrives as a message.
ACK_BUDGET_S = 2.0


@dataclass(eq=False)
class SlackServices:
    clone: CloneService
    bot_token: str
    ack_budget_s: float = ACK_BUDGET_S
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _seen: OrderedDict[str, None] = field(default_factory=OrderedDict)

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

    def first_time(self, key: str, keep: int = 1000) -> bool:
        """True the first time `key` is seen: Slack re-delivers an event it thinks was not acknowledged."""
        if key in self._seen:
            return False
        self._seen[key] = None
        while len(self._seen) > keep:
            self._seen.popitem(last=False)
        return True
