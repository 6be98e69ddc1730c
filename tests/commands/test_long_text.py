"""Long texts through a backend: pieces sent at once, joined; streamed with the first piece while the rest generate."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
import soundfile as sf

from backend.errors import BackendUnavailable
from backend.schema import CloneRequest, Progress
from commands.long_text import clone_text, stream_text
from commands.result_check import check_result
from tests.clips import sine_clip
from tests.fakes import FakeBackend

LONG = " ".join(f"This is sentence number {n}, and it goes on for a while." for n in range(80))  # ~4,500 chars


def request(text: str = LONG) -> CloneRequest:
    return CloneRequest(reference=sine_clip(), text=text, language="English", seed=7)


async def test_a_short_text_is_one_request_as_before() -> None:
    backend = FakeBackend()
    result = await clone_text(backend, request("Hello there."))
    assert [call.text for call in backend.calls] == ["Hello there."]
    assert result.audio_seconds == 2.0


async def test_a_long_text_goes_as_pieces_at_once_and_comes_back_as_one_clip() -> None:
    backend = FakeBackend(hold=True, audio_seconds=0.96)
    job = asyncio.ensure_future(clone_text(backend, request()))
    calls = [await backend.next_call()]
    await asyncio.sleep(0)
    calls += [await backend.next_call() for _ in range(len(backend.calls) - 1)]
    assert len(calls) > 10  # every piece reached the backend before any finished: they generate side by side
    assert all(call.request.seed == 7 and call.request.language == "English" for call in calls)
    assert " ".join(call.request.text for call in calls) == LONG
    for call in calls:
        call.release()
    result = check_result(await job)
    joined, _ = sf.read(io.BytesIO(result.audio), dtype="float32")
    assert len(joined) == len(calls) * 23_040 - (len(calls) - 1) * 720  # 30 ms crossfade per join
    assert result.frames == round(len(joined) / 1920)


async def test_progress_sums_the_pieces() -> None:
    seen: list[Progress] = []

    async def on_progress(progress: Progress) -> None:
        seen.append(progress)

    backend = FakeBackend(progress=[Progress(stage="generating", frames=5, frame_budget=20)])
    await clone_text(backend, request(), on_progress)
    pieces = len(backend.calls)
    assert seen[0].stage == "cloning" and seen[-1].stage == "generating"
    assert seen[-1].frames == 5 * pieces and seen[-1].frame_budget == 20 * pieces


async def test_one_failing_piece_fails_the_text_and_cancels_the_rest() -> None:
    backend = FakeBackend(hold=True)
    job = asyncio.ensure_future(clone_text(backend, request()))
    first = await backend.next_call()
    await asyncio.sleep(0)
    others = [await backend.next_call() for _ in range(len(backend.calls) - 1)]
    first.fail(BackendUnavailable("The voice backend is not reachable right now."))
    with pytest.raises(BackendUnavailable):
        await job
    await asyncio.sleep(0)
    assert others and all(call.cancelled for call in others)


async def test_streaming_plays_the_first_piece_while_the_others_generate() -> None:
    backend = FakeBackend(audio_seconds=0.96)
    stream = stream_text(backend, request())
    chunks = [await anext(stream)]  # the first audio: the other pieces are sent now, all at once
    await asyncio.sleep(0)
    assert len(backend.calls) > 10 and len(backend.streamed) == 1
    chunks += [chunk async for chunk in stream]
    assert backend.streamed[0].text == backend.calls[0].text
    pieces = len(backend.calls)
    assert pieces > 10
    samples = np.concatenate(chunks)
    assert len(samples) == pieces * 23_040 - (pieces - 1) * 720  # the same crossfaded join as the whole clip
    assert all(chunk.dtype == np.float32 for chunk in chunks)


async def test_closing_a_stream_cancels_the_pieces_still_generating() -> None:
    backend = FakeBackend(hold=True)
    stream = stream_text(backend, request())
    first = asyncio.ensure_future(anext(stream))
    calls = [await backend.next_call()]
    calls[0].release()
    await first
    await asyncio.sleep(0)  # the other pieces reach the backend
    await stream.aclose()
    rest = [await backend.next_call() for _ in range(len(backend.calls) - 1)]
    await asyncio.sleep(0)
    assert rest and all(call.cancelled for call in rest)
