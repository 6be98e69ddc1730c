"""The embedded defaults `voicebot demo` runs on when no account, clip or model exists.

The reference clip is synthesised (a vowel-like source with a rising and falling pitch, shaped in
syllables) so the demo needs no audio file and no network; the tiny checkpoint has random weights, so the
output proves the pipeline, not the voice.
"""

from __future__ import annotations

import numpy as np

from backend.audio import to_wav

DEMO_TEXT = "Hello from voicebot! This sentence was spoken by a cloned voice."
DEMO_REF_TEXT = "This is the reference voice for the offline demo."
DEMO_SAMPLE_RATE = 24_000


def demo_reference(seconds: float = 4.0, sample_rate: int = DEMO_SAMPLE_RATE) -> bytes:
    """A speech-like 4 s WAV: harmonics of a gliding 120-180 Hz pitch, gated into ~4 syllables per second."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 150 + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    return to_wav((0.25 * voice * syllables / np.abs(voice).max()).astype(np.float32), sample_rate)
