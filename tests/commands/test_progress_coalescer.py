"""The progress coalescer: at most one send per interval, the latest value wins, the final value always lands."""

from __future__ import annotations

import asyncio

from commands.progress_coalescer import Coalescer


class VirtualTime:
    """A clock that only moves when the coalescer sleeps, so intervals are exact and tests take no time."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Recorder:
    def __init__(self, time: VirtualTime, *, fail: set[str] | None = None, duration_s: float = 0.0) -> None:
        self.time = time
        self.fail = fail or set()
        self.duration_s = duration_s  # a slow send (429 retries inside the platform library)
        self.sent: list[tuple[float, str]] = []

    async def __call__(self, value: str) -> None:
        started = self.time.now
        self.time.now += self.duration_s
        await asyncio.sleep(0)
        if value in self.fail:
            raise RuntimeError(f"refused {value}")
        self.sent.append((started, value))


def make(time: VirtualTime, send: Recorder, **kwargs) -> Coalescer[str]:
    return Coalescer(send, min_interval_s=2.0, clock=time.clock, sleep=time.sleep, **kwargs)


async def test_bursts_collapse_to_the_latest_value_and_the_final_always_lands() -> None:
    time = VirtualTime()
    send = Recorder(time)
    progress = make(time, send)
    for position in range(10, 0, -1):
        progress.push(f"queued, position {position}")
    await asyncio.sleep(0)
    progress.push("generating")
    assert await progress.flush("done")
    values = [value for _, value in send.sent]
    assert values[0] == "queued, position 1" and values[-1] == "done"  # the burst became its latest value
    assert len(values) <= 3  # the first, at most one coalesced value, the final
    starts = [at for at, _ in send.sent]
    assert all(later - earlier >= 2.0 for earlier, later in zip(starts, starts[1:]))


async def test_interval_counts_from_the_end_of_a_slow_send() -> None:
    time = VirtualTime()
    send = Recorder(time, duration_s=5.0)
    progress = make(time, send)
    progress.push("a")
    await asyncio.sleep(0)
    progress.push("b")
    assert await progress.flush("c")
    starts = [at for at, _ in send.sent]
    assert [value for _, value in send.sent] == ["a", "c"]  # "b" was still waiting when the final state came
    assert all(later - (earlier + 5.0) >= 2.0 for earlier, later in zip(starts, starts[1:]))


async def test_pushes_after_the_final_state_are_ignored_and_duplicates_not_sent() -> None:
    time = VirtualTime()
    send = Recorder(time)
    progress = make(time, send, shown="uploading", sent_at=0.0)  # a message just created with this text
    progress.push("uploading")
    assert await progress.flush("done")
    progress.push("generating")  # a late callback
    await asyncio.sleep(0)
    assert [value for _, value in send.sent] == ["done"]
    assert send.sent[0][0] >= 2.0  # the message's creation counted as a send
    assert progress.closed and progress.shown == "done"


async def test_a_failing_send_is_logged_and_the_final_state_still_sent() -> None:
    time = VirtualTime()
    send = Recorder(time, fail={"generating"})
    progress = make(time, send)
    progress.push("generating")
    assert await progress.flush("done")
    assert [value for _, value in send.sent] == ["done"]


async def test_flush_reports_a_final_state_that_could_not_be_shown() -> None:
    time = VirtualTime()
    progress = make(time, Recorder(time, fail={"done"}))
    assert not await progress.flush("done")


def gated(gate: asyncio.Event, sent: list[str]) -> Coalescer[str]:
    """A coalescer whose sends wait for `gate`, then record what they sent."""
    time = VirtualTime()

    async def slow(value: str) -> None:
        await gate.wait()
        sent.append(value)

    return Coalescer(slow, min_interval_s=2.0, clock=time.clock, sleep=time.sleep)


async def test_a_cancelled_flush_caller_does_not_cancel_the_final_send() -> None:
    gate = asyncio.Event()
    sent: list[str] = []
    progress = gated(gate, sent)
    waiter = asyncio.ensure_future(progress.flush("done"))
    await asyncio.sleep(0)
    waiter.cancel()
    gate.set()
    await asyncio.sleep(0.01)
    assert sent == ["done"]


async def test_aclose_drops_what_is_pending() -> None:
    gate = asyncio.Event()
    sent: list[str] = []
    progress = gated(gate, sent)
    progress.push("generating")
    await asyncio.sleep(0)
    await progress.aclose()
    progress.push("late")
    gate.set()
    await asyncio.sleep(0)
    assert sent == [] and progress.closed
