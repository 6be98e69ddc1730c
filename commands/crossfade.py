"""Consecutive clips joined into one sound with a short crossfade, whole or as they stream in.

Each piece of a long text is its own generation: it starts and ends on its own, and butting two clips together
leaves a step in the waveform (a click) wherever the first does not end at zero. Over the last `fade` samples of
one clip and the first of the next, one fades out while the other fades in (raised cosine: the two gains sum to
one and start and end with zero slope), so the join is smooth and the result is `fade` samples shorter per join.

`Crossfader` works on a stream: it holds back the last `fade` samples of the clip being pushed (they may still
have to fade into the next clip) and releases everything else at once, so a streaming consumer is never more
than `fade` samples behind the generation. `join_clips` is the same code on whole clips.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backend.schema import SAMPLE_RATE

CROSSFADE_S = 0.03
FADE_SAMPLES = round(CROSSFADE_S * SAMPLE_RATE)
_EMPTY = np.zeros(0, dtype=np.float32)


def _overlap(outgoing: np.ndarray, incoming: np.ndarray) -> np.ndarray:
    """`outgoing` then `incoming`, their touching ends crossfaded over as many samples as the shorter one has."""
    overlap = min(len(outgoing), len(incoming))
    if overlap == 0:
        return np.concatenate([outgoing, incoming])
    ramp = np.sin(np.linspace(0.0, np.pi / 2, overlap + 2, dtype=np.float64)[1:-1]) ** 2
    mixed = outgoing[len(outgoing) - overlap:] * (1.0 - ramp) + incoming[:overlap] * ramp
    return np.concatenate([outgoing[:len(outgoing) - overlap], mixed.astype(np.float32), incoming[overlap:]])


class Crossfader:
    """Joins clips pushed chunk by chunk: `push` a clip's chunks, `next_clip` between clips, `finish` at the end.
    Each call returns the samples that are final (float32, possibly none)."""

    def __init__(self, fade_samples: int = FADE_SAMPLES) -> None:
        self._fade = fade_samples
        self._held = _EMPTY  # the end of the clip being pushed: it may fade into the next one
        self._outgoing: np.ndarray | None = None  # the end of the previous clip, waiting for this one's start

    def push(self, chunk: np.ndarray) -> np.ndarray:
        data = np.concatenate([self._held, np.asarray(chunk, dtype=np.float32).reshape(-1)])
        if self._outgoing is not None:
            if len(data) < self._fade:  # not enough of the new clip yet to fade into
                self._held = data
                return _EMPTY
            data, self._outgoing = _overlap(self._outgoing, data), None
        keep = min(self._fade, len(data))
        self._held = data[len(data) - keep:]
        return data[:len(data) - keep]

    def next_clip(self) -> None:
        """The clip pushed so far is complete; what comes next fades in over its end."""
        if self._outgoing is not None:  # the clip in between was shorter than the fade: it joins the outgoing end
            self._held = _overlap(self._outgoing, self._held)
        self._outgoing, self._held = self._held, _EMPTY

    def finish(self) -> np.ndarray:
        """The held end, after the last clip."""
        rest = self._held if self._outgoing is None else _overlap(self._outgoing, self._held)
        self._held, self._outgoing = _EMPTY, None
        return rest


def join_clips(clips: Sequence[np.ndarray], fade_samples: int = FADE_SAMPLES) -> np.ndarray:
    """The clips as one, each join crossfaded over `fade_samples`."""
    fader = Crossfader(fade_samples)
    parts = []
    for index, clip in enumerate(clips):
        if index:
            fader.next_clip()
        parts.append(fader.push(clip))
    parts.append(fader.finish())
    return np.concatenate(parts) if parts else _EMPTY
