"""What the health report shows about this process's clone jobs: counters and percentiles over recent jobs."""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueStats:
    """What the health report shows about this process's jobs; percentiles over the last `window` jobs."""

    uptime_s: float
    queued: int
    running: int
    max_concurrent: int
    max_queue: int
    done: int
    failed: int
    window: int
    total_p50_s: float | None = None
    total_p95_s: float | None = None
    wait_p50_s: float | None = None
    wait_p95_s: float | None = None
    rtf_p50: float | None = None
    rtf_p95: float | None = None


def p50_p95(values: Iterable[float]) -> tuple[float | None, float | None]:
    """Median and 95th percentile (inclusive method: always within the observed range)."""
    data = sorted(v for v in values if math.isfinite(v))
    if not data:
        return None, None
    if len(data) == 1:
        return data[0], data[0]
    cuts = statistics.quantiles(data, n=100, method="inclusive")
    return cuts[49], cuts[94]


class JobStatistics:
    """Done/failed counters and the last `window` jobs' total time, queue wait and real-time factor."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.done = 0
        self.failed = 0
        self._total_s: deque[float] = deque(maxlen=window)
        self._wait_s: deque[float] = deque(maxlen=window)
        self._rtf: deque[float] = deque(maxlen=window)

    def started(self, wait_s: float) -> None:
        self._wait_s.append(wait_s)

    def generated(self, rtf: float) -> None:
        if math.isfinite(rtf):
            self._rtf.append(rtf)

    def finished(self, total_s: float) -> None:
        self.done += 1
        self._total_s.append(total_s)

    def failed_one(self) -> None:
        self.failed += 1

    def snapshot(self, *, uptime_s: float, queued: int, running: int, max_concurrent: int,
                 max_queue: int) -> QueueStats:
        total, wait, rtf = p50_p95(self._total_s), p50_p95(self._wait_s), p50_p95(self._rtf)
        return QueueStats(
            uptime_s=uptime_s, queued=queued, running=running, max_concurrent=max_concurrent, max_queue=max_queue,
            done=self.done, failed=self.failed, window=self.window, total_p50_s=total[0], total_p95_s=total[1],
            wait_p50_s=wait[0], wait_p95_s=wait[1], rtf_p50=rtf[0], rtf_p95=rtf[1],
        )
