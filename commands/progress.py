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


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """`width` cells, filled in proportion (rounded down: full only when done)."""
    fraction = min(1.0, max(0.0, fraction)) if math.isfinite(fraction) else 0.0
    filled = math.floor(fraction * width)
    return FILLED * filled + EMPTY * (width - filled)


def elapsed(seconds: float) -> str:
    """Whole seconds for a line that is edited as time passes: "4 s", "2 min 5 s"."""
    whole = max(0, int(seconds)) if math.isfinite(seconds) else 0
    minutes, secs = divmod(whole, 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def generation_line(progress: Progress, elapsed_s: float) -> str | None:
    """"generating ▓▓▓▓░░░░ 52% · 6.1 s of audio · 4 s" while frames are counted, else None."""
    fraction = progress.fraction
    if progress.stage != "generating" or fraction is None:
        return None
    return (f"generating {progress_bar(fraction)} {math.floor(fraction * 100)}% · "
            f"{progress.audio_seconds:.1f} s of audio · {elapsed(elapsed_s)}")
