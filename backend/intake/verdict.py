"""Whether decoded samples can serve as a voice reference: real audio (finite, within full scale) with speech.

Length and rate were checked while decoding (`limits`); these checks need the samples.
"""

from __future__ import annotations

import numpy as np

from backend.errors import InvalidInput
from backend.intake.limits import AudioLimits
from backend.intake.rejections import corrupt
from backend.intake.speech import voiced_seconds

# Lossy codecs overshoot full scale a little on loud material (a decoded MP3 of a mastered track peaks
# around 1.0-1.4). Samples at twice full scale (+6 dBFS) or more are a decoder synthesising garbage: random
# bytes behind an "#!AMR" header decode to peaks of 3.6-7.
MAX_PEAK = 2.0


def check_signal(samples: np.ndarray) -> None:
    """Raise `corrupt_audio` when decoded samples are not real audio: every clip is held to this, voice or not
    (a clip checked for the watermark may be any sound)."""
    if not np.isfinite(samples).all():
        raise corrupt("it contains invalid (NaN or infinite) samples")
    peak = float(np.abs(samples).max())
    if peak >= MAX_PEAK:
        raise corrupt(f"its samples reach {peak:.1f} times full scale, which no recording does")


def check_speech(samples: np.ndarray, sample_rate: int, limits: AudioLimits) -> None:
    """Raise `silent_audio` unless the voice-activity detector hears enough speech for a voice reference."""
    if voiced_seconds(samples, sample_rate) < limits.min_voiced_seconds:
        raise InvalidInput(
            "The reference clip is silent: no voice can be heard in it. Record it again, speaking close to the "
            "microphone.",
            code="silent_audio",
        )
