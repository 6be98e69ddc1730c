"""A clone's progress reports as an async stream, for the transports that carry them to a remote caller.

The engine reports progress from its generation thread through a callback; the HTTP API's NDJSON answer and the
Modal app's generator method both need the same thing as one ordered stream on the event loop: every report,
then the result (or the error). `progress_then_result` is that bridge, written once for both.

The queue needs no bound: the engine passes frame counts on about twice a second (`backend.engine.progress`),
so a generation of minutes reports a few hundred small items at most.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from backend.batcher import ProgressSink
from backend.schema import Progress

T = TypeVar("T")


async def progress_then_result(clone: Callable[[ProgressSink], Awaitable[T]]) -> AsyncIterator[Progress | T]:
    """Start `clone(sink)` (the sink may be called from any thread), yield each `Progress` it reports, in order,
    then its result; its exception is raised after the reports before it. Closing the stream early (the caller
    went away) cancels the clone: a batcher job that has not started gives its slot to another request."""
    loop = asyncio.get_running_loop()
    reports: asyncio.Queue[Progress] = asyncio.Queue()

    def sink(progress: Progress) -> None:
        loop.call_soon_threadsafe(reports.put_nowait, progress)

    outcome = asyncio.ensure_future(clone(sink))
    try:
        while not outcome.done():
            report = asyncio.ensure_future(reports.get())
            await asyncio.wait({report, outcome}, return_when=asyncio.FIRST_COMPLETED)
            if not report.done():
                report.cancel()
            elif not report.cancelled():
                yield report.result()
        # Reports posted before the outcome was set are already queued (the loop runs callbacks in order).
        while not reports.empty():
            yield reports.get_nowait()
        yield outcome.result()
    finally:
        outcome.cancel()
