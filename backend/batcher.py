"""Clone requests into the engine's continuous batch: checked first, each with its own deadline and answer.

The batching itself happens in the engine: on the fast path every `Engine.clone_batch` call, from any thread,
joins the running decode at the next frame boundary and leaves it as soon as its clip is done
(`backend.engine.fast.continuous`), so a request never waits for a whole batch of others to finish. What a
serving process adds around it lives here, in `CloneBatcher`:

- Input is validated in the caller's turn, before anything is queued: bad input is answered at once.
- Each request is one engine call on a worker thread of a bounded pool (callers come from several event loops
  and from FastAPI's threadpool; a thread serves them all, and callers wait on futures, not threads).
- Each request has a deadline (`timeout_s`): past it the caller gets `BackendTimeout` and the request is told
  to leave the batch (`cancel`), freeing its slot. A call stuck in the engine cannot be killed; its caller is
  answered anyway, and closing never waits for it.
- Whatever the engine does (raise anything, answer with the wrong number of results), only that request fails.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, InvalidStateError, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import structlog

from backend.errors import BackendFailed, BackendTimeout
from backend.schema import CloneRequest, CloneResult, Progress

if TYPE_CHECKING:
    from backend.engine import Engine

log = structlog.get_logger(__name__)
# A max-length text (2048 frames) takes well under a minute on the fast engine and minutes on the stock one; past
# this the engine is stuck. Under the Modal input timeout (600 s), so callers hear it from here.
DEFAULT_TIMEOUT_S = 540.0
# Engine calls at once per batch slot: the rest of the in-flight ones wait in the engine's queue (prefilled
# as slots free), and beyond these in the pool's queue.
CALLS_PER_SLOT = 2

# Called from the engine's threads with the request's progress; must be cheap and thread-safe.
ProgressSink = Callable[[Progress], None]


class RunClones(Protocol):
    """The engine's `clone_batch`: blocking, one result per request, in order; `cancel` asks it to give up."""

    def __call__(self, requests: list[CloneRequest], *, on_progress: ProgressSink | None = None,
                 cancel: threading.Event | None = None) -> list[CloneResult]: ...


@dataclass(eq=False)
class _Job:
    request: CloneRequest
    on_progress: ProgressSink | None
    deadline: float  # time.monotonic()
    future: Future[CloneResult] = field(default_factory=Future)
    cancel: threading.Event = field(default_factory=threading.Event)
    queued: float = field(default_factory=time.perf_counter)


class CloneBatcher:
    """Runs each `clone` as its own `run` call (the engine's `clone_batch`, which batches continuously), at most
    `max_calls` at once, each answered by its deadline."""

    def __init__(self, run: RunClones, *, max_calls: int, validate: Callable[[CloneRequest], object] | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._run = run
        self._validate = validate
        self._timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=max_calls, thread_name_prefix="clone")
        self._jobs: set[_Job] = set()  # accepted, not answered yet
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def for_engine(cls, engine: Engine, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> CloneBatcher:
        """The batcher every serving process puts in front of its engine: enough calls at once to keep every
        slot of the fast decoder's largest bucket busy, input validated by the engine before queueing."""
        return cls(engine.clone_batch, max_calls=CALLS_PER_SLOT * engine.config.fast_max_batch,
                   validate=engine.validate, timeout_s=timeout_s)

    async def clone(self, request: CloneRequest, on_progress: ProgressSink | None = None) -> CloneResult:
        """Run `request` and wait for its result without blocking the event loop. `on_progress` is called from
        the engine's threads (hand it on with `loop.call_soon_threadsafe`). Cancelling the caller makes the
        request leave the batch."""
        if self._validate is not None:
            await asyncio.to_thread(self._validate, request)
        job = self._submit(request, on_progress)
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(job.future)),
                                          max(0.0, job.deadline - time.monotonic()))
        except TimeoutError:
            self._expire(job)
            return job.future.result(timeout=0)  # the timeout, or the answer that came in just before it
        except asyncio.CancelledError:
            job.cancel.set()
            raise

    def clone_blocking(self, request: CloneRequest, on_progress: ProgressSink | None = None) -> CloneResult:
        """`clone` for threads (the web API's handlers run in a threadpool)."""
        if self._validate is not None:
            self._validate(request)
        job = self._submit(request, on_progress)
        try:
            return job.future.result(timeout=max(0.0, job.deadline - time.monotonic()))
        except FutureTimeout:
            self._expire(job)
            return job.future.result(timeout=0)

    def load(self) -> int:
        """Requests accepted and not answered yet (health, benchmarks)."""
        with self._lock:
            return len(self._jobs)

    async def aclose(self) -> None:
        """Refuse new requests and wait until every accepted one is answered; bounded by their deadlines (a call
        stuck in the engine is answered with its timeout, not waited for)."""
        with self._lock:
            self._closed = True
            pending = [job.future for job in self._jobs]
        for future in pending:
            try:
                await asyncio.wrap_future(future)
            except BaseException:  # noqa: BLE001 - its caller hears it; closing only waits
                continue
        self._pool.shutdown(wait=False)

    # -- the workers ---------------------------------------------------------------------------------------
    def _submit(self, request: CloneRequest, on_progress: ProgressSink | None) -> _Job:
        job = _Job(request, on_progress, time.monotonic() + self._timeout_s)
        with self._lock:
            if self._closed:
                raise _shutting_down()
            self._jobs.add(job)
        job.future.add_done_callback(lambda _: self._forget(job))
        self._pool.submit(self._answer, job)
        return job

    def _forget(self, job: _Job) -> None:
        with self._lock:
            self._jobs.discard(job)

    def _expire(self, job: _Job) -> None:
        """The deadline passed: tell the engine to drop the request and answer its caller with the timeout
        (unless the worker answered first)."""
        job.cancel.set()
        log.error("batcher.timeout", timeout_s=self._timeout_s)
        _settle(job, error=self._timeout())

    def _answer(self, job: _Job) -> None:
        """One engine call for one request; answers its future whatever happens (the worker thread survives)."""
        if job.future.done() or job.cancel.is_set():
            return
        started = time.perf_counter()
        try:
            results = self._run([job.request], on_progress=_safe(job.on_progress), cancel=job.cancel)
            if not isinstance(results, list) or len(results) != 1 or not isinstance(results[0], CloneResult):
                raise BackendFailed("The voice engine returned an unusable answer; try again later.",
                                    code="bad_batch", detail=f"1 request, answer {type(results).__name__} of "
                                    f"{len(results) if isinstance(results, list) else '?'} items")
        except CancelledError:
            _settle(job, error=self._timeout())
            return
        except Exception as error:  # the request's own failure, as raised
            log.warning("batcher.request_failed", error=repr(error))
            _settle(job, error=error)
            return
        except BaseException as error:  # not an Exception: not the request's fault; the worker goes on
            log.error("batcher.engine_crashed", error=repr(error), exc_info=error)
            _settle(job, error=BackendFailed("The voice engine crashed; try again later.", code="engine_crashed",
                                             detail=repr(error)))
            return
        result = results[0]
        # time before the engine call comes on top of the engine's own queue time (waiting for a slot)
        queue_s = started - job.queued + result.timings.queue_s
        _settle(job, result=result.model_copy(update={"timings": result.timings.model_copy(
            update={"queue_s": queue_s})}))

    def _timeout(self) -> BackendTimeout:
        return BackendTimeout(
            f"The voice engine did not finish within {self._timeout_s:g} s; try a shorter text or try again later.",
            code="batch_timeout")


def _settle(job: _Job, *, result: CloneResult | None = None, error: BaseException | None = None) -> None:
    """Answer `job` unless its deadline (or its worker) answered it first."""
    try:
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)
    except InvalidStateError:
        pass


def _shutting_down() -> BackendFailed:
    return BackendFailed("The voice backend is shutting down; try again in a moment.", code="shutting_down")


def _safe(sink: ProgressSink | None) -> ProgressSink | None:
    """A failing progress sink never stops the generation."""
    if sink is None:
        return None

    def report(progress: Progress) -> None:
        try:
            sink(progress)
        except Exception:
            log.warning("batcher.progress_failed", exc_info=True)

    return report
