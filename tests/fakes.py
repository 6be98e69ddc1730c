"""A `BackendClient` for adapter and command tests: no model, no network, fully controlled by the test.

    backend = FakeBackend(hold=True)             # every clone waits until the test releases it
    job = await service.submit(...)
    call = await backend.next_call()             # the job reached the backend (stage "generating" reported)
    call.release()                               # or call.fail(BackendUnavailable("..."))
    result = await job.wait()

Without `hold` a clone answers at once (or raises `error`). Every request is recorded in `calls`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from backend.audio import to_wav
from backend.clients.base import StageCallback
from backend.languages import LANGUAGES
from backend.schema import SAMPLE_RATE, CacheStats, CloneRequest, CloneResult, GpuMemory, HealthReport, Timings


@dataclass(eq=False)
class FakeCall:
    """One clone call in flight; the test decides when and how it ends."""

    request: CloneRequest
    released: asyncio.Event = field(default_factory=asyncio.Event)
    error: BaseException | None = None

    def release(self) -> None:
        self.released.set()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.released.set()


def fake_result(
    audio_seconds: float = 2.0, *, total_s: float = 0.9, variant: str = "fake", gpu: str | None = "Fake GPU",
    voice_cached: bool = False, cold_start: bool = False,
) -> CloneResult:
    """A valid CloneResult: real 24 kHz WAV audio of `audio_seconds` and plausible timings."""
    frames = round(audio_seconds / 0.08)
    samples = 0.1 * np.sin(2 * np.pi * 220 * np.arange(frames * 1920) / SAMPLE_RATE)
    return CloneResult(
        audio=to_wav(samples.astype(np.float32), SAMPLE_RATE), audio_seconds=frames * 0.08, frames=frames,
        timings=Timings(clone_s=0.0 if voice_cached else 0.2, generate_s=total_s * 0.6, decode_s=total_s * 0.1,
                        total_s=total_s),
        voice_cached=voice_cached, cold_start=cold_start, variant=variant, gpu=gpu, attention="sdpa",
    )


def fake_health(variant: str = "fake", *, warm: bool = True) -> HealthReport:
    return HealthReport(
        model="Qwen/Qwen3-TTS-12Hz-0.6B-Base", variant=variant, device="cuda:0", gpu="Fake GPU", attention="sdpa",
        dtype="bfloat16", versions={"torch": "2.9.0", "qwen-tts": "0.1.1"}, load_s=12.5, uptime_s=3600.0,
        requests_served=42, warm=warm, cache=CacheStats(size=3, capacity=64, hits=10, misses=3),
        gpu_memory=GpuMemory(allocated_gb=4.2, reserved_gb=5.0, peak_gb=6.1, total_gb=80.0),
        languages=list(LANGUAGES),
    )


class FakeBackend:
    """Records calls; optionally holds each clone until released, fails with `error`, or is unreachable."""

    def __init__(
        self, name: str = "fake", *, hold: bool = False, error: BaseException | None = None,
        health_error: BaseException | None = None, audio_seconds: float = 2.0, total_s: float = 0.9,
        gpu: str | None = "Fake GPU", voice_cached: bool = False, cold_start: bool = False,
    ) -> None:
        self.name = name
        self.hold = hold
        self.error = error
        self.health_error = health_error
        self.health_report = fake_health(name)
        self.audio_seconds = audio_seconds
        self.total_s = total_s
        self.gpu = gpu
        self.voice_cached = voice_cached
        self.cold_start = cold_start
        self.calls: list[CloneRequest] = []
        self.health_calls = 0
        self.closed = False
        self._entered: asyncio.Queue[FakeCall] = asyncio.Queue()

    async def clone(self, request: CloneRequest, on_stage: StageCallback | None = None) -> CloneResult:
        self.calls.append(request)
        call = FakeCall(request)
        if on_stage is not None:
            await on_stage("cloning")
            await on_stage("generating")
        self._entered.put_nowait(call)
        if self.hold:
            await call.released.wait()
        error = call.error or self.error
        if error is not None:
            raise error
        return fake_result(
            self.audio_seconds, total_s=self.total_s, variant=self.name, gpu=self.gpu,
            voice_cached=self.voice_cached, cold_start=self.cold_start,
        )

    async def next_call(self) -> FakeCall:
        """The next clone call to reach the backend (in arrival order)."""
        return await self._entered.get()

    async def clone_batch(self, requests: list[CloneRequest]) -> list[CloneResult]:
        return [await self.clone(request) for request in requests]

    async def health(self) -> HealthReport:
        self.health_calls += 1
        if self.health_error is not None:
            raise self.health_error
        return self.health_report

    async def languages(self) -> list[str]:
        return list(LANGUAGES)

    async def aclose(self) -> None:
        self.closed = True


class NeverAnswers(FakeBackend):
    """A backend that hangs (for timeouts): clone and health wait forever."""

    async def clone(self, request: CloneRequest, on_stage: StageCallback | None = None) -> CloneResult:
        self.calls.append(request)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def health(self) -> HealthReport:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


__all__ = ["FakeBackend", "FakeCall", "NeverAnswers", "fake_health", "fake_result"]
