"""A `BackendClient` for adapter and command tests: no model, no network, fully controlled by the test.

    backend = FakeBackend(hold=True)             # every clone waits until the test releases it
    job = await service.submit(...)
    call = await backend.next_call()             # the job reached the backend (stage "generating" reported)
    call.release()                               # or call.fail(BackendUnavailable("..."))
    result = await job.wait()

Without `hold` a clone answers at once (or raises `error`). Every request is recorded in `calls`, every
watermark check's audio in `checked` (answered with `verdict`, or `check_error` raised) and every digest
sent to `forget_voices` in `forgotten`.
`answer` replaces the result with anything (a broken backend: see `BAD_ANSWERS`); `progress` adds frame
reports after "generating".
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf

from backend.audio import to_wav
from backend.clients.base import ProgressCallback
from backend.languages import LANGUAGES
from backend.schema import (
    SAMPLE_RATE,
    CacheStats,
    CloneRequest,
    CloneResult,
    GpuMemory,
    HealthReport,
    Progress,
    Timings,
    WatermarkCheck,
)


@dataclass(eq=False)
class FakeCall:
    """One clone call in flight; the test decides when and how it ends."""

    request: CloneRequest
    released: asyncio.Event = field(default_factory=asyncio.Event)
    error: BaseException | None = None
    cancelled: bool = False  # the caller gave up while the call was held

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


def _wav(frames: int, sample_rate: int = SAMPLE_RATE, channels: int = 1, subtype: str = "PCM_16",
         format: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.full((frames, channels), 0.1, dtype=np.float32), sample_rate, format=format,
             subtype=subtype)
    return buffer.getvalue()


def _with_audio(audio: bytes, **changes: object) -> Callable[[], CloneResult]:
    return lambda: fake_result(2.0).model_copy(update={"audio": audio} | changes)


# What a broken or hostile backend may answer instead of a clone result, by name (2.0 s is reported).
BAD_ANSWERS: dict[str, Callable[[], object]] = {
    "none": lambda: None,
    "a dict": lambda: fake_result(2.0).model_dump(),
    "random bytes": _with_audio(np.random.default_rng(7).bytes(96_044)),
    "empty audio": _with_audio(b""),
    "a WAV without samples": _with_audio(_wav(0), audio_seconds=0.0, frames=0),
    "16 kHz": _with_audio(_wav(32_000, sample_rate=16_000)),
    "stereo": _with_audio(_wav(48_000, channels=2)),
    "float samples": _with_audio(_wav(48_000, subtype="FLOAT")),
    "FLAC": _with_audio(_wav(48_000, format="FLAC")),
    "truncated WAV": _with_audio(_wav(48_000)[:50_000]),
    "too short for its length": _with_audio(_wav(48_000 - 3 * 1920)),
    "too long for its length": _with_audio(_wav(48_000 + 3 * 1920)),
    "another reported rate": _with_audio(_wav(48_000), sample_rate=16_000),
    "a non-finite length": _with_audio(_wav(48_000), audio_seconds=float("nan")),
}


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
        answer: Callable[[], object] | None = None, progress: list[Progress] | None = None,
        queue_s: float = 0.0, verdict: WatermarkCheck | None = None, check_error: BaseException | None = None,
    ) -> None:
        self.name = name
        self.verdict = verdict or WatermarkCheck(watermarked=True, confidence=0.97)
        self.check_error = check_error
        self.checked: list[bytes] = []
        self.forgotten: list[str] = []
        self.hold = hold
        self.error = error
        self.answer = answer
        self.progress = progress or []
        self.queue_s = queue_s
        self.health_error = health_error
        self.health_report = fake_health(name)
        self.audio_seconds = audio_seconds
        self.total_s = total_s
        self.gpu = gpu
        self.voice_cached = voice_cached
        self.cold_start = cold_start
        self.calls: list[CloneRequest] = []
        self.streamed: list[CloneRequest] = []
        self.stream_chunk_s = 0.24
        self.health_calls = 0
        self.closed = False
        self._entered: asyncio.Queue[FakeCall] = asyncio.Queue()

    async def clone(self, request: CloneRequest, on_progress: ProgressCallback | None = None) -> CloneResult:
        self.calls.append(request)
        call = FakeCall(request)
        if on_progress is not None:
            for progress in [Progress(stage="cloning"), Progress(stage="generating"), *self.progress]:
                await on_progress(progress)
        self._entered.put_nowait(call)
        if self.hold:
            try:
                await call.released.wait()
            except asyncio.CancelledError:
                call.cancelled = True
                raise
        error = call.error or self.error
        if error is not None:
            raise error
        if self.answer is not None:
            return self.answer()  # type: ignore[return-value]
        result = fake_result(
            self.audio_seconds, total_s=self.total_s, variant=self.name, gpu=self.gpu,
            voice_cached=self.voice_cached, cold_start=self.cold_start,
        )
        return result.model_copy(update={"timings": result.timings.model_copy(update={"queue_s": self.queue_s})})

    async def clone_stream(self, request: CloneRequest) -> AsyncIterator[np.ndarray]:
        """`clone`'s audio in chunks of `stream_chunk_s` (the call is recorded in `calls` and `streamed`, and
        holds or fails as `clone` does, before the first chunk)."""
        self.streamed.append(request)
        result = await self.clone(request)
        samples, _ = sf.read(io.BytesIO(result.audio), dtype="float32")
        step = max(1, round(self.stream_chunk_s * SAMPLE_RATE))
        for start in range(0, len(samples), step):
            yield samples[start:start + step]

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

    async def check_watermark(self, audio: bytes) -> WatermarkCheck:
        self.checked.append(audio)
        if self.check_error is not None:
            raise self.check_error
        return self.verdict

    async def forget_voices(self, clip_sha256s: list[str]) -> int:
        """Each digest counts as one cached voice prompt dropped, the first time it is sent."""
        new = set(clip_sha256s) - set(self.forgotten)
        self.forgotten += sorted(new)
        return len(new)

    async def aclose(self) -> None:
        self.closed = True


class NeverAnswers(FakeBackend):
    """A backend that hangs (for timeouts): clone, health and the watermark check wait forever."""

    async def clone(self, request: CloneRequest, on_progress: ProgressCallback | None = None) -> CloneResult:
        self.calls.append(request)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def health(self) -> HealthReport:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def check_watermark(self, audio: bytes) -> WatermarkCheck:
        self.checked.append(audio)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class IgnoresCancellation(FakeBackend):
    """A backend that hangs and swallows cancellation (a buggy client): only `release()` ends its clone."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._released = asyncio.Event()
        self.cancellations = 0

    def release(self) -> None:
        self._released.set()

    async def clone(self, request: CloneRequest, on_progress: ProgressCallback | None = None) -> CloneResult:
        self.calls.append(request)
        while not self._released.is_set():
            try:
                await self._released.wait()
            except asyncio.CancelledError:
                self.cancellations += 1
        return fake_result()


class RaisesBaseException(BaseException):
    """Not an Exception (like an exotic library's control-flow signal): what `except Exception` misses."""


__all__ = ["BAD_ANSWERS", "FakeBackend", "FakeCall", "IgnoresCancellation", "NeverAnswers", "RaisesBaseException",
           "fake_health", "fake_result"]
