"""The background capture thread: the prefill's and speech decoder's other graphs, eager graphs of the shapes
loading left, then every shape compiled, while requests are served; and its stop when the process exits.

Why a stop at exit: the thread is a daemon (a server never waits for it), and a process that exited while it was
still capturing ended with "terminate called without an active exception" from the C++ runtime, which aborts the
process (one H200: a check script that cloned once and exited). A one-shot CLI run with the local backend on a GPU
would do the same after writing its result. At exit every running capture is told to stop and is joined: it
finishes the shape in hand (its kernels reach the compile cache) and starts no other; a Python thread that is
waited for is never torn down inside native code.
"""

from __future__ import annotations

import atexit
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from backend.engine.fast.decoder import FastDecoder, Shape

log = structlog.get_logger(__name__)
SERVING_SWITCH_INTERVAL_S = 0.0005  # GIL switch interval while compiling or serving a batch (default 0.005)
EXIT_WAIT_S = 120.0  # the longest exit waits for the shape in hand (a new batch size compiles in 15-20 s cold)
_running: dict[threading.Event, threading.Thread] = {}  # each running capture's stop, and its thread


def start(decoder: FastDecoder, shapes: Sequence[Shape], *, eager: Sequence[Shape] = (),
          before: Callable[[], object] | None = None, after: Callable[[], object] | None = None) -> threading.Thread:
    """Start the thread (see `FastDecoder.capture_in_background`)."""
    decoder._background = True
    stop = threading.Event()
    steps = [(decoder.capture_eager, shape) for shape in eager] + [(decoder.capture, shape) for shape in shapes]

    def work() -> None:
        try:
            _capture(decoder, steps, stop, before, after)
        finally:
            _running.pop(stop, None)

    thread = threading.Thread(target=work, name="fast-graph-capture", daemon=True)
    _running[stop] = thread
    thread.start()
    return thread


def _capture(decoder: FastDecoder, steps: list[tuple[Callable[[Shape], None], Shape]], stop: threading.Event,
             before: Callable[[], object] | None, after: Callable[[], object] | None) -> None:
    started = time.perf_counter()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SERVING_SWITCH_INTERVAL_S))
    try:
        if before is not None:
            try:
                before()
            except Exception as error:  # noqa: BLE001 - what it did not capture runs eagerly
                log.warning("fast.capture_failed", step="before", error=repr(error))
        for done, (capture, shape) in enumerate(steps):
            if stop.is_set():
                log.info("fast.background_stopped", left=len(steps) - done)
                return
            try:
                capture(shape)
                decoder._failed.pop(shape, None)
            except Exception as error:  # noqa: BLE001 - that shape keeps its eager graph or runs in another
                decoder._failed[shape] = f"{type(error).__name__}: {error}"[:300]
                log.warning("fast.capture_failed", shape=shape, compiled=capture == decoder.capture,
                            error=repr(error), serving="eager graph" if shape in decoder._graphs else "other")
    finally:
        decoder._background = False
        if not decoder.serving:  # a continuous batch keeps the interval low for good
            sys.setswitchinterval(interval)
    log.info("fast.background_captured", compiled=len(decoder._compiled_graphs), graphs=len(decoder._graphs),
             failed=len(decoder._failed), seconds=round(time.perf_counter() - started, 2))
    if after is not None:
        after()


@atexit.register
def stop_all() -> None:
    """At exit (before the interpreter stops daemon threads): stop every capture after its shape in hand."""
    running = list(_running.items())
    for stop, _ in running:
        stop.set()
    for _, thread in running:
        thread.join(timeout=EXIT_WAIT_S)
