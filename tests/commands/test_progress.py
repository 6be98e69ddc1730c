"""The progress line every platform shows while a job generates."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.schema import Progress
from commands.progress import BAR_WIDTH, elapsed, generation_line, progress_bar


def test_the_generation_line():
    progress = Progress(stage="generating", frames=76, frame_budget=146)
    assert generation_line(progress, 4.7) == "generating ▓▓▓▓░░░░ 52% · 6.1 s of audio · 4 s"


@pytest.mark.parametrize("progress", [
    Progress(stage="cloning", frame_budget=146),
    Progress(stage="generating"),  # a backend that does not count frames
])
def test_no_bar_without_counted_frames(progress):
    assert generation_line(progress, 3.0) is None


@pytest.mark.parametrize("fraction, bar", [(0.0, "░" * 8), (0.124, "░" * 8), (0.125, "▓" + "░" * 7),
                                           (0.99, "▓" * 7 + "░"), (1.0, "▓" * 8), (7.0, "▓" * 8),
                                           (-1.0, "░" * 8), (float("nan"), "░" * 8)])
def test_the_bar_is_full_only_when_done(fraction, bar):
    assert progress_bar(fraction) == bar


@given(st.integers(0, 10_000), st.integers(1, 10_000), st.floats(allow_nan=True, allow_infinity=True))
def test_any_report_renders_one_bounded_line(frames, budget, seconds):
    line = generation_line(Progress(stage="generating", frames=frames, frame_budget=budget), seconds)
    assert line is not None and "\n" not in line and len(line) < 80
    assert line.count("▓") + line.count("░") == BAR_WIDTH


@pytest.mark.parametrize("seconds, text", [(0.4, "0 s"), (59.9, "59 s"), (125, "2 min 5 s"), (11_520, "3 h 12 min"),
                                           (1e30, "99 h 0 min"), (float("inf"), "0 s")])
def test_elapsed(seconds, text):
    assert elapsed(seconds) == text
