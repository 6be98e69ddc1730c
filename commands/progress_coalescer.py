"""Latest-value-wins delivery of a changing status through a slow, rate-limited `send` (a chat message edit).

A clone job's status changes faster than a platform lets a bot edit one message (Discord, Slack: a few edits
per few seconds per message or channel, 429 beyond). Every adapter needs the same thing, so it lives here:

    progress = Coalescer(edit_message, min_interval_s=2.0)
    progress.push("Job J7K2QX: queued, position 3 of 5")   # returns at once
    progress.push("Job J7K2QX: generating speech…")         # replaces the one above if it was not sent yet
    await progress.flush("Job J7K2QX: done in 8.1 s")       # the final state: always sent, then pushes are ignored

Guarantees: one `send` at a time; at least `min_interval_s` between the end of one send and the start of the
next (measured from the end, so a send slowed by 429 retries still leaves the full gap before the next edit);
intermediate values may be skipped, the latest pushed value never is; the value `flush` is given is sent last
and is never replaced or dropped by coalescing; a value equal to what is shown is not sent again. A failing
`send` is logged and the next value is still sent: progress is best effort, the final state reports its outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")
_NOTHING = object()


class Coalescer(Generic[T]):
    """One coalescer per message. `clock` and `sleep` default to the running loop's; tests inject virtual ones.

    `shown` and `sent_at` describe a message that was just created with that value (its creation counts as a
    send for the interval).
    """

    def __init__(
        self, send: Callable[[T], Awaitable[object]], *, min_interval_s: float,
        clock: Callable[[], float] | None = None, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        shown: T | None = None, sent_at: float | None = None,
    ) -> None:
        self._send = send
        self.min_interval_s = min_interval_s
        self._clock = clock or asyncio.get_running_loop().time
        self._sleep = sleep
        self._pending: object = _NOTHING
        self._shown: object = _NOTHING if shown is None else shown
        self._sent_at = sent_at
        self._final: object = _NOTHING
        self._worker: asyncio.Task[None] | None = None
        self.sends = 0

    @property
    def closed(self) -> bool:
        """True once `flush` was called: later pushes are ignored."""
        return self._final is not _NOTHING

    @property
    def shown(self) -> T | None:
        """The last value `send` accepted."""
        return None if self._shown is _NOTHING else self._shown  # type: ignore[return-value]

    def push(self, value: T) -> None:
        """Show `value` as soon as the interval allows, unless a newer value or the final state comes first."""
        if self.closed:
            return
        self._pending = value
        self._wake()

    async def flush(self, final: T) -> bool:
        """Send `final` after anything in flight (respecting the interval) and close; True if it is shown.

        Shielded: a caller cancelled while waiting does not cancel the final send.
        """
        if not self.closed:
            self._final = final
            self._pending = final
            self._wake()
        if self._worker is not None:
            await asyncio.shield(self._worker)
        return self._shown == self._final

    async def aclose(self) -> None:
        """Drop whatever is pending and stop (the message is going away)."""
        if not self.closed:
            self._final = None
        self._pending = _NOTHING
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    def _wake(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="progress-coalescer")

    async def _run(self) -> None:
        while self._pending is not _NOTHING:
            if self._sent_at is not None:
                wait = self._sent_at + self.min_interval_s - self._clock()
                if wait > 0:
                    await self._sleep(wait)
            value, self._pending = self._pending, _NOTHING
            if value == self._shown:
                continue
            try:
                await self._send(value)  # type: ignore[arg-type]
            except Exception as exc:  # best effort: the next value (or the final one) is still sent
                log.warning("progress.send_failed", error=repr(exc), final=value is self._final)
            else:
                self._shown = value
                self.sends += 1
            finally:
                self._sent_at = self._clock()
