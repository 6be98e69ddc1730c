"""How far a generation has got, reported from inside the engine at a pace the callers can afford.

The fast decode loop counts every frame (every few milliseconds on a GPU); each report crosses a thread and an
event loop and ends as a chat message edit, so `ProgressReporter` passes frame counts on at most every
`interval_s` (about twice a second). Stage changes always pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from backend.schema import Progress, Stage

ProgressSink = Callable[[Progress], None]
Clock = Callable[[], float]


class ProgressReporter:
    """One generation's reports to `sink` (None: report nothing). `frame_budget` 0 means frames are not
    counted (the stock path), so only stages are reported."""

    def __init__(self, sink: ProgressSink | None, *, frame_budget: int, interval_s: float,
                 clock: Clock = time.monotonic) -> None:
        self._sink = sink
        self._budget = frame_budget
        self._interval_s = interval_s
        self._clock = clock
        self._last = -float("inf")

    def stage(self, stage: Stage) -> None:
        """A new stage starts (its frames at 0)."""
        self._emit(Progress(stage=stage, frame_budget=self._budget))

    def frames(self, done: int) -> None:
        """`done` frames of the budget are generated; passed on when `interval_s` has passed since the last."""
        if self._sink is not None and self._clock() - self._last >= self._interval_s:
            self._emit(Progress(stage="generating", frames=min(done, self._budget), frame_budget=self._budget))

    def _emit(self, progress: Progress) -> None:
        if self._sink is not None:
            self._last = self._clock()
            self._sink(progress)
