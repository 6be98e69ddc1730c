"""A clone job's progress as one line of text, the same on every platform.

    "generating ▓▓▓▓░░░░ 52% · 6.1 s of audio · 4 s"

The bar counts frames against the generation's frame budget, an upper bound: speech usually ends before it, so
a job often jumps from the middle of the bar to done. Backends that do not count frames get their stage's label
("generating speech…"). Plain text: adapters escape it for their markup like any other line.
"""

from __future__ import annotations

import math

from backend.schema import Progress

BAR_WIDTH = 8
FILLED = "▓"
EMPTY = "░"
MAX_ELAPSED_S = 99 * 3600  # a job never runs this long; a broken clock must not make the line endless


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """`width` cells, filled in proportion (rounded down: full only when done)."""
    fraction = min(1.0, max(0.0, fraction)) if math.isfinite(fraction) else 0.0
    filled = math.floor(fraction * width)
    return FILLED * filled + EMPTY * (width - filled)


def elapsed(seconds: float) -> str:
    """Whole seconds for a line that is edited as time passes: "4 s", "2 min 5 s", "3 h 12 min"."""
    whole = min(max(0, int(seconds)), MAX_ELAPSED_S) if math.isfinite(seconds) else 0
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def generation_line(progress: Progress, elapsed_s: float) -> str | None:
    """"generating ▓▓▓▓░░░░ 52% · 6.1 s of audio · 4 s" while frames are counted, else None."""
    fraction = progress.fraction
    if progress.stage != "generating" or fraction is None:
        return None
    return (f"generating {progress_bar(fraction)} {math.floor(fraction * 100)}% · "
            f"{progress.audio_seconds:.1f} s of audio · {elapsed(elapsed_s)}")
