"""Long texts through any backend: cut into pieces (`commands.sentences`) that generate side by side, joined
with short crossfades (`commands.crossfade`).

Every piece is its own backend request, and all of them are sent at once: the fast engine's continuous batch
decodes them together (locally, in one Modal container, behind the HTTP endpoint), so a 5,000-character text
takes about as long as its longest piece rather than the sum of all of them. Each piece keeps the engine's frame
budget for its own length under the hard cap, so no text, however long, makes one runaway generation.

- `clone_text`: the whole clip (for `/clone` and `/say`), one `CloneResult`; progress sums the pieces' frames.
- `stream_text`: chunks as they are generated (for `/speak` and read-aloud): the first piece streams, and the
  others are sent (all at once) when its first chunk is there, so the first audio never waits behind them (a
  stock engine generates one request at a time); they generate while the first piece plays, and each follows,
  crossfaded, as soon as the one before has been handed on.

A text of one piece is one request, exactly as before. If any piece fails the others are cancelled and the
failure is the text's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import numpy as np

from backend.audio import read_samples, to_wav
from backend.clients.base import AudioChunks, BackendClient, ProgressCallback
from backend.schema import SAMPLE_RATE, CloneRequest, CloneResult, Progress, Timings
from commands.crossfade import Crossfader, join_clips
from commands.result_check import SAMPLES_PER_FRAME, check_result
from commands.sentences import split_text


def pieces_of(request: CloneRequest) -> list[CloneRequest]:
    """The requests a text is generated as: itself when it is one piece, else one per piece (same voice,
    language, seed and frame cap)."""
    texts = split_text(request.text, request.language)
    if len(texts) <= 1:
        return [request]
    return [request.model_copy(update={"text": text}) for text in texts]


class _SummedProgress:
    """The pieces' progress as one job's: "generating" once any piece generates, frames and budgets summed;
    one report at a time, in order."""

    def __init__(self, callback: ProgressCallback | None, pieces: int) -> None:
        self._callback = callback
        self._latest: list[Progress | None] = [None] * pieces
        self._lock = asyncio.Lock()

    def of(self, index: int) -> ProgressCallback | None:
        if self._callback is None:
            return None

        async def report(progress: Progress) -> None:
            async with self._lock:  # summed and reported in one turn: a later report never shows fewer frames
                self._latest[index] = progress
                known = [item for item in self._latest if item is not None]
                stage = "generating" if any(item.stage == "generating" for item in known) else "cloning"
                await self._callback(Progress(  # type: ignore[misc]
                    stage=stage, frames=sum(item.frames for item in known),
                    frame_budget=sum(item.frame_budget for item in known)))

        return report


def _samples(result: CloneResult) -> np.ndarray:
    """A piece's audio as float32 samples, after the same check every answer gets."""
    return read_samples(check_result(result).audio)


def _start(calls: list[Awaitable[CloneResult]]) -> list[asyncio.Future[CloneResult]]:
    """The calls as running tasks whose failures are never "never retrieved" (a cancelled text's pieces)."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    for task in tasks:
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return tasks


async def _all(calls: list[Awaitable[CloneResult]]) -> list[CloneResult]:
    """Every call's result in order; the first failure cancels the rest and is raised as itself."""
    tasks = _start(calls)
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()


async def clone_text(backend: BackendClient, request: CloneRequest,
                     on_progress: ProgressCallback | None = None) -> CloneResult:
    """`backend.clone` for a text of any length: the pieces at once, joined. The joined result reports the
    wall time of the whole, the slowest piece's stages and queue wait, and the largest batch."""
    pieces = pieces_of(request)
    if len(pieces) == 1:
        return await backend.clone(request, on_progress)
    started = time.perf_counter()
    progress = _SummedProgress(on_progress, len(pieces))
    results = await _all([backend.clone(piece, progress.of(index)) for index, piece in enumerate(pieces)])
    audio = join_clips([_samples(result) for result in results])
    first = results[0]
    slowest = max(results, key=lambda result: result.timings.total_s)
    timings = Timings(clone_s=max(r.timings.clone_s for r in results), generate_s=slowest.timings.generate_s,
                      decode_s=slowest.timings.decode_s, watermark_s=sum(r.timings.watermark_s for r in results),
                      queue_s=min(r.timings.queue_s for r in results), total_s=time.perf_counter() - started)
    return first.model_copy(update={
        "audio": to_wav(audio, SAMPLE_RATE), "audio_seconds": len(audio) / SAMPLE_RATE,
        "frames": round(len(audio) / SAMPLES_PER_FRAME), "timings": timings,
        "voice_cached": all(r.voice_cached for r in results), "cold_start": any(r.cold_start for r in results),
        "batch_size": max(r.batch_size for r in results)})


async def stream_text(backend: BackendClient, request: CloneRequest) -> AudioChunks:
    """`backend.clone_stream` for a text of any length: the first piece streams; the others are sent at once when
    its first chunk is there, and each follows, crossfaded, when its turn comes. Closing the iterator cancels
    whatever still generates."""
    pieces = pieces_of(request)
    rest: list[asyncio.Future[CloneResult]] = []
    first = backend.clone_stream(pieces[0])
    fader = Crossfader()
    try:
        async for chunk in first:
            if not rest:
                rest = _start([backend.clone(piece) for piece in pieces[1:]])
            if (out := fader.push(chunk)).size:
                yield out
        rest = rest or _start([backend.clone(piece) for piece in pieces[1:]])
        for task in rest:
            fader.next_clip()
            if (out := fader.push(_samples(await task))).size:
                yield out
        if (out := fader.finish()).size:
            yield out
    finally:
        for task in rest:
            task.cancel()
        await first.aclose()  # type: ignore[attr-defined]
