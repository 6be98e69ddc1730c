"""Clips joined with a crossfade: the same result whole or streamed in any chunks, no step at the join."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.crossfade import FADE_SAMPLES, Crossfader, join_clips


def clip(length: int, value: float) -> np.ndarray:
    return np.full(length, value, dtype=np.float32)


def test_a_join_fades_one_clip_into_the_next_without_a_step() -> None:
    joined = join_clips([clip(2000, 0.5), clip(2000, -0.5)])
    assert len(joined) == 4000 - FADE_SAMPLES
    assert np.abs(np.diff(joined)).max() < 1.0 / FADE_SAMPLES * 2  # butted together it would jump by 1.0
    assert joined[0] == 0.5 and joined[-1] == -0.5


def test_equal_clips_join_at_the_same_level() -> None:
    joined = join_clips([clip(1000, 0.3), clip(1000, 0.3), clip(1000, 0.3)])
    assert np.allclose(joined, 0.3)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 900), max_size=6), min_size=1, max_size=4))
def test_streaming_gives_the_whole_join_for_any_chunking(chunkings: list[list[int]]) -> None:
    rng = np.random.default_rng(len(chunkings))
    clips = [rng.uniform(-1, 1, sum(sizes) + 50).astype(np.float32) for sizes in chunkings]
    fader, out = Crossfader(), []
    for index, (samples, sizes) in enumerate(zip(clips, chunkings, strict=True)):
        if index:
            fader.next_clip()
        start = 0
        for size in [*sizes, len(samples)]:
            out.append(fader.push(samples[start:start + size]))
            start += size
    out.append(fader.finish())
    assert np.allclose(np.concatenate(out), join_clips(clips))


def test_clips_shorter_than_the_fade_still_join() -> None:
    joined = join_clips([clip(3000, 0.2), clip(100, 0.2), clip(3000, 0.2)])
    assert np.allclose(joined, 0.2) and len(joined) > 3000
