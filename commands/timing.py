"""What the bots print under a generated clip: ordered (label, value) fields, a file name, the consent line.

Discord renders the fields as embed fields, Slack as section blocks, the CLI as a table; the values are plain
text (adapters escape them for their markup: user text can hold mentions or formatting).
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backend.schema import CloneResult
    from commands.jobs import Job

Field = tuple[str, str]

CONSENT_LINE = "Only clone voices you have permission to use."
DEFAULT_FILENAME = "voice-clone"
EXCERPT_CHARS = 80
FILENAME_CHARS = 40


def format_seconds(seconds: float | None) -> str:
    """"0.42 s", "12.3 s", "2 min 5 s", "3 h 12 min"; "n/a" for None or non-finite values."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def format_rtf(rtf: float | None) -> str:
    """Processing seconds per audio second with its meaning: "0.45 (2.2x faster than real time)"."""
    if rtf is None or not math.isfinite(rtf) or rtf < 0:
        return "n/a"
    if rtf == 0:
        return "0.00"
    if 0.95 <= rtf <= 1.05:
        return f"{rtf:.2f} (about real time)"
    if rtf < 1:
        return f"{rtf:.2f} ({1 / rtf:.1f}x faster than real time)"
    return f"{rtf:.2f} ({rtf:.1f}x slower than real time)"


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The text on one line, cut at a word boundary with an ellipsis when longer than `limit`."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"


def timing_fields(
    result: CloneResult, *, text: str, language: str, queue_wait_s: float | None = None, variant: str | None = None
) -> list[Field]:
    """The timing report, in display order. `variant` names the backend when the result does not.

    "Queue wait" is all the waiting before generation: `queue_wait_s` (this process's job queue) plus the
    backend's own (`timings.queue_s`: its batch window and the generations ahead), so queue wait and "Total"
    (the backend's processing) add up to what the user waited for the backend."""
    timings = result.timings
    clone = format_seconds(timings.clone_s)
    fields: list[Field] = [
        ("Text", excerpt(text)),
        ("Language", language),
        ("Audio length", format_seconds(result.audio_seconds)),
    ]
    backend_wait = timings.queue_s if math.isfinite(timings.queue_s) and timings.queue_s > 0 else 0.0
    if queue_wait_s is not None or backend_wait:
        fields.append(("Queue wait", format_seconds((queue_wait_s or 0.0) + backend_wait)))
    fields += [
        ("Voice clone", f"{clone} (cached voice)" if result.voice_cached else clone),
        ("Generation", format_seconds(timings.generate_s)),
        ("Decode", format_seconds(timings.decode_s)),
        ("Total", format_seconds(timings.total_s)),
        ("Real-time factor", format_rtf(result.real_time_factor)),
    ]
    name = result.variant or variant or "unknown"
    fields.append(("Backend", f"{name} on {result.gpu}" if result.gpu else name))
    if result.cold_start:
        fields.append(("Cold start", "yes: the model was loading, later requests are faster"))
    return fields


def job_timing_fields(job: Job) -> list[Field]:
    """`timing_fields` for a job whose backend call succeeded (text, language, queue wait from the job)."""
    if job.result is None:
        raise ValueError(f"job {job.id} has no result")
    return timing_fields(
        job.result, text=job.text, language=job.language, queue_wait_s=job.queue_wait_s, variant=job.variant
    )


def timing_summary(result: CloneResult) -> str:
    """One line for notifications and plain-text fallbacks: "3.20 s of audio in 1.44 s (RTF 0.45)"."""
    rtf = result.real_time_factor
    rtf_text = f"{rtf:.2f}" if math.isfinite(rtf) else "n/a"
    return (
        f"{format_seconds(result.audio_seconds)} of audio in {format_seconds(result.timings.total_s)} "
        f"(RTF {rtf_text})"
    )


def result_filename(text: str, *, max_chars: int = FILENAME_CHARS, extension: str = "wav") -> str:
    """A safe short file name from the text: "Héllo, wörld!" -> "hello-world.wav"; "voice-clone.wav" when
    nothing ASCII is left. Lower-case letters, digits and hyphens only, at most `max_chars` before the dot."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > max_chars:
        cut = slug[:max_chars]
        if slug[max_chars] != "-" and "-" in cut[max_chars // 2 :]:
            cut = cut.rsplit("-", 1)[0]  # end on a whole word when one ends in the second half
        slug = cut.strip("-")
    return f"{slug or DEFAULT_FILENAME}.{extension}"
