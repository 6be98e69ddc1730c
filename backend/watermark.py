"""The inaudible watermark every generated clip carries, and the check that finds it.

resemble-perth's implicit watermarker (PerthNet, MIT) marks a clip's magnitude spectrogram below 2 kHz where
speech masks it, and a decoder network scores any clip for the mark. Its weights ship inside the package, so
marking and checking work offline; it needs torch and librosa, so only the backend (engine, local backend)
imports this module, never a bot process.

- Whole clips: `Watermarker.mark` (the engine marks every result before it leaves).
- Streamed clips: `StreamMarker` marks chunk by chunk. Each chunk marked alone would start and end its own
  spectrogram, and the seams click (-14 dB of the peak on speech-like audio); so each chunk is marked with
  `STREAM_CONTEXT_S` of the audio before it and held back by `STREAM_LOOKAHEAD_S` until the audio after it has
  arrived. The chunks then add up to the whole clip marked at once within -46 dB of its peak, and the
  assembled stream detects as the whole clip does (benchmarks/RESULTS.watermark.md).
- Checking: `detect(audio bytes)` decodes any format the intake reads, within `CHECK_LIMITS` (size, length,
  sample rate; no speech check: the clip may be music or noise), and scores it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import threading
import time
from typing import Any

import numpy as np
import structlog

from backend.errors import InvalidInput
from backend.intake import MIB, AudioLimits, load_audio, renamed
from backend.schema import SAMPLE_RATE, WatermarkCheck

log = structlog.get_logger(__name__)

# The detector's score is near 1 on marked clips and near 0 on others (RESULTS.watermark.md has the spread);
# halfway is where a clip counts as marked.
THRESHOLD = 0.5
# A clip to check may be a whole generated clip (the engine caps one at 2048 frames, 164 s) re-encoded by a
# platform, so the limits are wider than a reference clip's; the rate cap keeps the decoded buffer bounded
# (180 s at 48 kHz is 33 MiB of float32).
CHECK_LIMITS = AudioLimits(max_bytes=16 * MIB, min_seconds=1.0, max_seconds=180.0, max_sample_rate=48_000)
# Below one step of 16-bit audio there is nothing to mark or to score (the detector's score on noise that faint
# drifts up to 0.5 and more); such a clip is treated as silence.
SILENCE_PEAK = 2.0**-15
# PerthNet's spectrogram (2048-sample windows, 320-sample hops at 32 kHz) needs more than half a window of audio,
# and its round trip drops the partial hop at the end. So audio is padded with a window of silence (and to at
# least MIN_SECONDS) before marking or scoring, and cut back after: no sample of the clip is lost.
PAD_SECONDS = 0.064
MIN_SECONDS = 0.05
STREAM_CONTEXT_S = 0.2
STREAM_LOOKAHEAD_S = 0.1
_WARM_UP_CLIP = (0.1 * np.random.default_rng(0).standard_normal(SAMPLE_RATE // 4)).astype(np.float32)


class Watermarker:
    """PerthNet on one device, loaded on first use (about a second once torch is imported). Thread-safe: the
    networks only run inference, and loading happens once under a lock."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._perth: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the bundled weights and mark a quarter second of noise (idempotent); the engine calls it while it
        loads, so the first clip does not pay for either."""
        with self._lock:
            if self._perth is not None:
                return
            # Imported from its module, not the package root: `perth` swallows an ImportError there and leaves the
            # class None, which would hide why (e.g. setuptools without `pkg_resources`).
            from perth.perth_net.perth_net_implicit.perth_watermarker import PerthImplicitWatermarker

            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # it prints "loaded PerthNet"; stdout is the CLI's
                perth = PerthImplicitWatermarker(device=self.device)
            # One mark now: the first one imports librosa's helpers and numba-compiles them (20 s with an empty
            # numba cache on a CPU, holding the GIL), which would otherwise land on the first clip's request and
            # stall every other one; done here, it is also part of a Modal memory snapshot.
            import torch

            with torch.inference_mode():
                perth.apply_watermark(_padded(_WARM_UP_CLIP, SAMPLE_RATE), sample_rate=SAMPLE_RATE)
            self._perth = perth
            log.info("watermark.loaded", device=self.device, seconds=round(time.perf_counter() - started, 2))

    def _model(self) -> Any:
        if self._perth is None:
            self.load()
        return self._perth

    def mark(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """`samples` (float mono) with the watermark, same length. Silence stays as it is: there is no spectrum
        to hide a mark in."""
        import torch

        samples = np.asarray(samples, dtype=np.float32)
        if _silent(samples):
            return samples.copy()
        with torch.inference_mode():
            marked = np.asarray(self._model().apply_watermark(_padded(samples, sample_rate), sample_rate=sample_rate),
                                dtype=np.float32)
        return marked[: samples.size]

    def confidence(self, samples: np.ndarray, sample_rate: int) -> float:
        """The detector's score in [0, 1]; 0 where it has nothing to score (silence)."""
        import torch

        samples = np.asarray(samples, dtype=np.float32)
        if _silent(samples):
            return 0.0
        with torch.inference_mode():
            score = float(self._model().get_watermark(_padded(samples, sample_rate), sample_rate, round=False))
        return min(1.0, max(0.0, score)) if np.isfinite(score) else 0.0

    def check(self, samples: np.ndarray, sample_rate: int) -> WatermarkCheck:
        score = self.confidence(samples, sample_rate)
        return WatermarkCheck(watermarked=score >= THRESHOLD, confidence=round(score, 4))


def _padded(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    pad = max(int(np.ceil(PAD_SECONDS * sample_rate)), int(np.ceil(MIN_SECONDS * sample_rate)) - samples.size)
    return np.pad(samples, (0, pad))


def _silent(samples: np.ndarray) -> bool:
    return samples.size == 0 or float(np.abs(samples).max()) < SILENCE_PEAK


@functools.cache
def shared_watermarker(device: str = "cpu") -> Watermarker:
    """One watermarker per device and process: the engine and the local backend's check share it."""
    return Watermarker(device)


def detect(audio: bytes, watermarker: Watermarker, limits: AudioLimits = CHECK_LIMITS) -> WatermarkCheck:
    """Decode a clip (any format the intake reads, bounded by `limits`) and check it for the watermark.
    `InvalidInput` for what cannot be checked, worded about "the clip" rather than a reference clip."""
    try:
        clip = load_audio(audio, limits)
    except InvalidInput as exc:
        raise renamed(exc, "The clip") from exc
    return watermarker.check(clip.samples, clip.sample_rate)


class StreamMarker:
    """Marks a clip that arrives in chunks, so the assembled stream carries the mark as the whole clip would.

    `push` returns the marked audio that is final so far (all but the last `STREAM_LOOKAHEAD_S`); `finish`
    returns the rest. Each call marks the new audio together with `STREAM_CONTEXT_S` before it and the lookahead
    after it, so no chunk edge becomes a spectrogram edge; the cost is that context marked again per chunk.
    """

    def __init__(self, watermarker: Watermarker, sample_rate: int = SAMPLE_RATE) -> None:
        self._watermarker = watermarker
        self._sample_rate = sample_rate
        self._context = round(STREAM_CONTEXT_S * sample_rate)
        self._lookahead = round(STREAM_LOOKAHEAD_S * sample_rate)
        self._raw = np.zeros(0, dtype=np.float32)  # the unmarked audio from `_start` on
        self._start = 0  # stream position of `_raw[0]`
        self._emitted = 0  # stream position up to which marked audio has been returned

    def push(self, chunk: np.ndarray) -> np.ndarray:
        self._raw = np.concatenate([self._raw, np.asarray(chunk, dtype=np.float32)])
        return self._emit(self._start + self._raw.size - self._lookahead)

    def finish(self) -> np.ndarray:
        return self._emit(self._start + self._raw.size)

    def _emit(self, end: int) -> np.ndarray:
        if end <= self._emitted:
            return np.zeros(0, dtype=np.float32)
        marked = self._watermarker.mark(self._raw, self._sample_rate)
        out = marked[self._emitted - self._start: end - self._start]
        self._emitted = end
        keep_from = max(self._start, end - self._context)  # the next call's left context
        self._raw = self._raw[keep_from - self._start:]
        self._start = keep_from
        return out
