"""The engine's blocking stream of speech chunks (`Engine.clone_stream`) as an async iterator, for every serving
side: the local backend, the web API's `/clone-stream` and the Modal generator method; and one deadline over a
remote stream (`items_until`, for the HTTP and Modal clients).

The engine's iterator runs on a thread of its own, which hands each chunk to the event loop as it is decoded, so
the loop never blocks on the GPU and a chunk is passed on the moment it exists. When the consumer stops early
(closes the iterator, is cancelled, or the deadline passes) the thread is told to stop: it closes the engine's
iterator after its current chunk, which takes the request out of the continuous batch at the next frame. A
thread stuck inside the engine cannot be interrupted, but nobody waits for it: the consumer has its answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

import numpy as np
import structlog

from backend.errors import BackendTimeout

log = structlog.get_logger(__name__)
_END = object()
T = TypeVar("T")


async def chunks_in_thread(make: Callable[[], Iterator[np.ndarray]], *, timeout_s: float,
                           name: str = "clone-stream") -> AsyncIterator[np.ndarray]:
    """The chunks of `make()` (called on the thread), each as it is made; the whole stream has `timeout_s`,
    after which `BackendTimeout` is raised and the generation told to stop. Whatever `make()` raises is raised
    here, in order after the chunks before it."""
    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def put(item: object) -> None:
        try:
            loop.call_soon_threadsafe(arrived.put_nowait, item)
        except RuntimeError:  # the loop closed: nobody is listening any more
            stop.set()

    def run() -> None:
        chunks: Iterator[np.ndarray] | None = None
        try:
            chunks = make()
            for chunk in chunks:
                if stop.is_set():
                    break
                put(chunk)
            put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # leaves the continuous batch if it stopped early

    threading.Thread(target=run, name=name, daemon=True).start()
    deadline = loop.time() + timeout_s
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    item = await arrived.get()
            except TimeoutError:
                log.warning("stream.timeout", timeout_s=timeout_s)
                raise BackendTimeout(f"The voice engine did not finish within {timeout_s:g} s; try a shorter text "
                                     "or try again later.", code="stream_timeout") from None
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()


async def items_until(items: AsyncIterator[T], deadline: float) -> AsyncIterator[T]:
    """`items`, each awaited under one deadline for the whole stream (`loop.time()` based): TimeoutError when
    it passes. Only the waits for the source count, not what the consumer does between items."""
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                item = await anext(items)
        except StopAsyncIteration:
            return
        yield item
