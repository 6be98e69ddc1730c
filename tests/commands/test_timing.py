"""The timing report under each generated clip, the result's file name and the consent line."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.schema import Timings
from commands.jobs import JobQueue
from commands.timing import (
    CONSENT_LINE,
    excerpt,
    format_rtf,
    format_seconds,
    job_timing_fields,
    result_filename,
    timing_fields,
    timing_summary,
)
from tests.fakes import FakeBackend, fake_result

LABELS = ["Text", "Language", "Audio length", "Queue wait", "Voice clone", "Generation", "Decode", "Total",
          "Real-time factor", "Backend"]


def test_fields_in_order_with_values():
    result = fake_result(2.0, total_s=0.9, variant="fa2", gpu="NVIDIA H100 80GB HBM3")
    fields = timing_fields(result, text="Hello   world,\nhow are you?", language="English", queue_wait_s=3.25)
    assert [label for label, _ in fields] == LABELS
    assert dict(fields) == {
        "Text": "Hello world, how are you?",
        "Language": "English",
        "Audio length": "2.00 s",
        "Queue wait": "3.25 s",
        "Voice clone": "0.20 s",
        "Generation": "0.54 s",
        "Decode": "0.09 s",
        "Total": "0.90 s",
        "Real-time factor": "0.45 (2.2x faster than real time)",
        "Backend": "fa2 on NVIDIA H100 80GB HBM3",
    }


def test_cached_voice_cold_start_and_missing_details():
    result = fake_result(voice_cached=True, cold_start=True, variant="", gpu=None)
    fields = dict(timing_fields(result, text="hi", language="Auto", variant="sdpa"))
    assert "Queue wait" not in fields
    assert fields["Voice clone"] == "0.00 s (cached voice)"
    assert fields["Backend"] == "sdpa"
    assert list(fields)[-1] == "Cold start"


async def test_job_fields_take_text_language_and_wait_from_the_job():
    queue = JobQueue(1)
    backend = FakeBackend("modal:fa2")

    async def work(job):
        return await backend.clone(None)

    job = await queue.submit(work, user_id="u", place="cli", text="Bonjour", language="French", variant="fa2")
    with pytest.raises(ValueError):
        job_timing_fields(job)
    await job.wait()
    fields = dict(job_timing_fields(job))
    assert (fields["Text"], fields["Language"], fields["Backend"]) == ("Bonjour", "French", "modal:fa2 on Fake GPU")
    assert fields["Queue wait"].endswith(" s")


async def test_queue_wait_includes_the_wait_inside_the_backends_batch():
    """A user who waited 10.8 s (8.7 s of them for the backend's batch) must not read "Queue wait 0.00 s"."""
    clock = iter([100.0, 100.0, 101.5, 101.5, 112.3]).__next__  # submitted, started 1.5 s later, answered
    queue = JobQueue(1, clock=lambda: clock())
    backend = FakeBackend(total_s=2.1, queue_s=8.7)

    async def work(job):
        return await backend.clone(None)

    job = await queue.submit(work, user_id="u", place="cli", text="Hello", language="English")
    await job.wait()
    fields = dict(job_timing_fields(job))
    assert (fields["Queue wait"], fields["Total"]) == ("10.2 s", "2.10 s")  # 1.5 s here + 8.7 s in the batch


def test_a_backend_wait_shows_without_a_job_queue_and_a_broken_one_counts_nothing():
    waited = fake_result(2.0).model_copy(update={"timings": Timings(total_s=1.0, queue_s=0.25)})
    assert dict(timing_fields(waited, text="hi", language="Auto"))["Queue wait"] == "0.25 s"
    broken = fake_result(2.0).model_copy(update={"timings": Timings(total_s=1.0, queue_s=float("nan"))})
    assert dict(timing_fields(broken, text="hi", language="Auto", queue_wait_s=1.0))["Queue wait"] == "1.00 s"


@pytest.mark.parametrize("rtf, text", [
    (0.45, "0.45 (2.2x faster than real time)"),
    (0.1, "0.10 (10.0x faster than real time)"),
    (1.0, "1.00 (about real time)"),
    (2.5, "2.50 (2.5x slower than real time)"),
    (0.0, "0.00"),
    (float("inf"), "n/a"),
    (None, "n/a"),
])
def test_real_time_factor_wording(rtf, text):
    assert format_rtf(rtf) == text


@pytest.mark.parametrize("seconds, text", [
    (0.0, "0.00 s"), (0.456, "0.46 s"), (12.34, "12.3 s"), (125, "2 min 5 s"), (3 * 3600 + 720, "3 h 12 min"),
    (None, "n/a"), (float("nan"), "n/a"), (-1, "0.00 s"),
])
def test_durations(seconds, text):
    assert format_seconds(seconds) == text


def test_summary_and_excerpt():
    assert timing_summary(fake_result(2.0, total_s=0.9)) == "2.00 s of audio in 0.90 s (RTF 0.45)"
    long = "word " * 100
    cut = excerpt(long)
    assert len(cut) <= 80 and cut.endswith("word…")
    assert excerpt("short") == "short"


@pytest.mark.parametrize("text, name", [
    ("Hello, World!", "hello-world.wav"),
    ("Héllo wörld — ça va?", "hello-world-ca-va.wav"),
    ("你好世界", "voice-clone.wav"),
    ("", "voice-clone.wav"),
    ("   !!! ...  ", "voice-clone.wav"),
    ("../../etc/passwd", "etc-passwd.wav"),
    ("CON", "con.wav"),
    ("The quick brown fox jumps over the lazy dog and keeps running far away",
     "the-quick-brown-fox-jumps-over-the-lazy.wav"),
    ("a" * 100, "a" * 40 + ".wav"),
])
def test_result_filename(text, name):
    assert result_filename(text) == name


@given(st.text())
def test_result_filename_is_always_a_short_safe_slug(text):
    name = result_filename(text)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*\.wav", name)
    assert len(name) <= 40 + len(".wav")


def test_consent_line():
    assert CONSENT_LINE == "Only clone voices you have permission to use."
