"""Concurrent clone requests to one engine become one batched generation.

A generation reads the model's weights once per step for every row of its batch, so a batch of 16 takes little
longer than one request (performance notes: throughput grows almost linearly with the batch). Requests arrive
one at a time, though: `CloneBatcher` queues them, waits a few milliseconds for others to join, and hands up
to `max_batch` of them to the engine's `clone_batch` in one call. Whatever arrives while a batch generates
forms the next one, so under load batches fill without any waiting.

The batches are gathered on one worker thread rather than an asyncio task: callers come from several event
loops (the Modal container's, each test's) and from FastAPI's threadpool (`clone_blocking`), and a thread
serves them all. Callers wait on futures, not threads, so a full batch of waiters costs no thread each.

Nothing waits forever. Each generation runs in its own thread under a deadline (`batch_timeout_s`): past it,
the batch's callers get `BackendTimeout` and the worker moves on (a thread stuck in the engine cannot be
killed; the next batch waits for it up to its own deadline, so at most one generation thread ever runs).
Whatever the engine does (raise anything, answer with the wrong number of results), the worker survives and
only that batch's requests fail.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import structlog

from backend.errors import BackendFailed, BackendTimeout, VoicebotError
from backend.schema import CloneRequest, CloneResult, Progress

if TYPE_CHECKING:
    from backend.engine import Engine

log = structlog.get_logger(__name__)
DEFAULT_WINDOW_S = 0.005  # next to seconds of generation, waiting this long for company costs nothing
# Requests still being validated (clip decoding, a few ms to tens of ms each) are about to join: a burst of 16
# arrives spread over more than the window, so the batch also waits for them, but never longer than this.
DEFAULT_MAX_WAIT_S = 0.1
# A full batch of max-length texts (2048 frames) takes well under a minute on the fast engine and minutes on the
# stock one; past this the engine is stuck. Under the Modal input timeout (600 s), so callers hear it from here.
DEFAULT_BATCH_TIMEOUT_S = 540.0

# Called from the generation thread with the batch's progress; must be cheap and thread-safe.
ProgressSink = Callable[[Progress], None]


class RunBatch(Protocol):
    """The engine's `clone_batch`: blocking, one result per request, in order."""

    def __call__(self, requests: list[CloneRequest], *,
                 on_progress: ProgressSink | None = None) -> list[CloneResult]: ...


@dataclass
class _Job:
    request: CloneRequest
    on_progress: ProgressSink | None = None
    future: Future[CloneResult] = field(default_factory=Future)
    queued: float = field(default_factory=time.perf_counter)


class CloneBatcher:
    """Groups concurrent `clone` calls into `run_batch` calls of at most `max_batch` requests.

    `run_batch` is blocking (the engine's `clone_batch`) and returns one result per request, in order; it
    reports the generation's progress to `on_progress`, which the batcher hands to every request of the batch.
    `validate` (the engine's `validate`) runs in the caller's turn, before queueing: bad input is answered at
    once and never fails a batch. Should a batch fail anyway, its requests are retried one by one, so each
    gets its own result or its own error.

    A request with a seed runs alone: the engine seeds one random stream per generation, so a seeded result is
    reproducible only with the same batch, and alone it is the same audio as an unbatched clone.
    """

    def __init__(self, run_batch: RunBatch, *, max_batch: int,
                 validate: Callable[[CloneRequest], object] | None = None,
                 window_s: float = DEFAULT_WINDOW_S, max_wait_s: float = DEFAULT_MAX_WAIT_S,
                 batch_timeout_s: float = DEFAULT_BATCH_TIMEOUT_S) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._validate = validate
        self._window_s = window_s
        self._max_wait_s = max(max_wait_s, window_s)
        self._batch_timeout_s = batch_timeout_s
        self._arriving = 0  # requests between `clone` and the queue (being validated)
        self._jobs: deque[_Job] = deque()
        self._wakeup = threading.Condition()
        self._worker: threading.Thread | None = None  # started by the first request, not at construction
        self._generation: threading.Thread | None = None  # the latest engine call (alive past its deadline: stuck)
        self._closed = False

    @classmethod
    def for_engine(cls, engine: Engine, *, window_s: float = DEFAULT_WINDOW_S,
                   batch_timeout_s: float = DEFAULT_BATCH_TIMEOUT_S) -> CloneBatcher:
        """The batcher every serving process puts in front of its engine: batches up to the fast decoder's
        largest bucket, input validated by the engine before queueing."""
        return cls(engine.clone_batch, max_batch=engine.config.fast_max_batch, validate=engine.validate,
                   window_s=window_s, batch_timeout_s=batch_timeout_s)

    async def clone(self, request: CloneRequest, on_progress: ProgressSink | None = None) -> CloneResult:
        """Queue `request` and wait for its result without blocking the event loop. `on_progress` is called
        from the generation thread (hand it on with `loop.call_soon_threadsafe`)."""
        self._arrive()
        try:
            if self._validate is not None:
                await asyncio.to_thread(self._validate, request)
        except BaseException:
            self._leave()
            raise
        # Cancelling the caller cancels the job if it has not started (its batch slot goes to another request).
        return await asyncio.wrap_future(self._submit(request, on_progress))

    def clone_blocking(self, request: CloneRequest, on_progress: ProgressSink | None = None) -> CloneResult:
        """`clone` for threads (the web API's handlers run in a threadpool)."""
        self._arrive()
        try:
            if self._validate is not None:
                self._validate(request)
        except BaseException:
            self._leave()
            raise
        return self._submit(request, on_progress).result()

    async def aclose(self) -> None:
        """Refuse new requests, let the worker finish every accepted one, then return. Bounded: a stuck
        generation fails its batch at the deadline, and the batches after it fail at once."""
        with self._wakeup:
            self._closed = True
            self._wakeup.notify()
            worker = self._worker
        if worker is not None:
            await asyncio.to_thread(worker.join)

    # -- the worker ----------------------------------------------------------------------------------------
    def _arrive(self) -> None:
        with self._wakeup:
            self._arriving += 1

    def _leave(self) -> None:
        with self._wakeup:
            self._arriving -= 1
            self._wakeup.notify()

    def _submit(self, request: CloneRequest, on_progress: ProgressSink | None) -> Future[CloneResult]:
        """Queue a validated request (it stops counting as arriving in the same step, so the worker never sees
        it in neither place)."""
        job = _Job(request, on_progress)
        with self._wakeup:
            self._arriving -= 1
            if self._closed:
                raise _shutting_down()
            self._jobs.append(job)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="clone-batcher", daemon=True)
                self._worker.start()
            self._wakeup.notify()
        return job.future

    def _work(self) -> None:
        while True:
            with self._wakeup:
                while not self._jobs and not self._closed:
                    self._wakeup.wait()
                if not self._jobs:
                    return  # closed and drained
                first = self._jobs[0].queued
                while len(self._jobs) < self._max_batch and not self._closed:
                    # the window, extended up to max_wait while requests are still on their way in
                    deadline = first + (self._max_wait_s if self._arriving else self._window_s)
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    self._wakeup.wait(left)
                batch = self._take()
            if batch:
                self._run(batch)

    def _take(self) -> list[_Job]:
        """The oldest job alone if it is seeded, else it and the next unseeded ones up to `max_batch` (seeded
        jobs passed over stay first in line); jobs cancelled while queued are dropped."""
        batch: list[_Job] = []
        passed_over: list[_Job] = []
        while self._jobs and len(batch) < self._max_batch:
            job = self._jobs.popleft()
            if batch and job.request.seed is not None:
                passed_over.append(job)
            elif job.future.set_running_or_notify_cancel():
                batch.append(job)
                if job.request.seed is not None:
                    break
        self._jobs.extendleft(reversed(passed_over))
        return batch

    def _run(self, batch: list[_Job]) -> None:
        """Answer every job of the batch, whatever happens: the worker thread must outlive any engine failure."""
        try:
            self._answer(batch)
        except VoicebotError as error:  # the deadline, a wrong answer, a refusal: the same for every request
            log.warning("batcher.batch_failed", size=len(batch), code=error.code, error=error.message)
            _fail(batch, lambda error=error: _copy(error))
        except Exception as error:  # one request's own failure (a batch's was retried one by one): as raised
            log.warning("batcher.request_failed", error=repr(error))
            _fail(batch, lambda error=error: error)
        except BaseException as error:  # not an Exception: not any one request's fault, so no retry
            log.error("batcher.engine_crashed", size=len(batch), error=repr(error), exc_info=error)
            _fail(batch, lambda error=error: BackendFailed("The voice engine crashed; try again later.",
                                                           code="engine_crashed", detail=repr(error)))

    def _answer(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        try:
            results = self._generate(batch)
        except Exception as error:
            if len(batch) == 1 or (isinstance(error, VoicebotError) and error.code in _NOT_RETRIED):
                raise
            log.warning("batcher.batch_failed", size=len(batch), error=repr(error), retry="one by one")
            for job in batch:
                self._run([job])
            return
        log.info("batcher.batch", size=len(batch), seconds=round(time.perf_counter() - started, 3),
                 longest_queue_s=round(started - batch[0].queued, 4))
        for job, result in zip(batch, results, strict=True):
            timings = result.timings.model_copy(update={"queue_s": started - job.queued})
            job.future.set_result(result.model_copy(update={"timings": timings}))

    def _generate(self, batch: list[_Job]) -> list[CloneResult]:
        """One engine call in its own thread, under the batch's deadline; raises `BackendTimeout` past it."""
        deadline = time.monotonic() + self._batch_timeout_s
        stuck = self._generation
        if stuck is not None and stuck.is_alive():  # the previous batch overran its deadline
            if self._closed:
                raise _shutting_down()
            stuck.join(max(0.0, deadline - time.monotonic()))
            if stuck.is_alive():
                raise self._timeout()
        requests = [job.request for job in batch]
        report = _fan_out([job.on_progress for job in batch if job.on_progress is not None])
        outcome: Future[list[CloneResult]] = Future()

        def generate() -> None:
            try:
                outcome.set_result(self._run_batch(requests, on_progress=report))
            except BaseException as error:  # handed to the worker, which decides; this thread just ends
                outcome.set_exception(error)

        self._generation = threading.Thread(target=generate, name="clone-generation", daemon=True)
        self._generation.start()
        done, _ = futures.wait([outcome], timeout=max(0.0, deadline - time.monotonic()))
        if not done:
            log.error("batcher.batch_timeout", size=len(batch), timeout_s=self._batch_timeout_s)
            raise self._timeout()
        results = outcome.result()
        if not isinstance(results, list) or len(results) != len(batch) or not all(
                isinstance(result, CloneResult) for result in results):
            raise BackendFailed("The voice engine returned an unusable answer; try again later.", code="bad_batch",
                                detail=f"{len(batch)} requests, answer {type(results).__name__} "
                                       f"of {len(results) if isinstance(results, list) else '?'} items")
        return results

    def _timeout(self) -> BackendTimeout:
        return BackendTimeout(
            f"The voice engine did not finish within {self._batch_timeout_s:g} s; try a shorter text or try "
            "again later.", code="batch_timeout")


_NOT_RETRIED = {"batch_timeout", "shutting_down"}  # retrying each request would only wait again


def _shutting_down() -> BackendFailed:
    return BackendFailed("The voice backend is shutting down; try again in a moment.", code="shutting_down")


def _copy(error: VoicebotError) -> VoicebotError:
    """A fresh instance per caller: callers on several threads re-raise it, each adding its own traceback."""
    try:
        return type(error)(error.message, code=error.code, detail=error.detail)
    except TypeError:  # a subclass with another constructor
        return error


def _fail(batch: list[_Job], error: Callable[[], BaseException]) -> None:
    for job in batch:
        if not job.future.done():
            job.future.set_exception(error())


def _fan_out(sinks: list[ProgressSink]) -> ProgressSink:
    """One progress report to every request of the batch; a failing sink never stops the generation."""

    def report(progress: Progress) -> None:
        for sink in sinks:
            try:
                sink(progress)
            except Exception:
                log.warning("batcher.progress_failed", exc_info=True)

    return report
