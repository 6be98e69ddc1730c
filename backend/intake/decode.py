"""Bytes of a known container -> float32 mono samples, memory-bounded whatever the file claims.

libsndfile decodes in-process what it can; ffmpeg gets the rest, and also the WAV/OGG files libsndfile
rejects: WAV and OGG can carry codecs it lacks (ADPCM or GSM in WAV, Speex in OGG), it gives up on an OGG
cut short that ffmpeg still reads, and a corrupt file fails in ffmpeg too, as `corrupt_audio`.
"""

from __future__ import annotations

import io

import numpy as np

from backend.errors import InvalidInput
from backend.intake.ffmpeg import decode_with_ffmpeg
from backend.intake.limits import AudioLimits
from backend.intake.sniff import DEMUXERS
from backend.intake.soundfile_reader import read_bounded

_IN_PROCESS = frozenset({"wav", "flac", "ogg", "aiff"})  # libsndfile reads these (OGG: Vorbis and Opus)
# Refusals ffmpeg would only repeat: the header or the decoded length is over a limit. (A short read may be
# libsndfile giving up on a damaged file early, so "too short" and "empty" get ffmpeg's second opinion.)
_FINAL = frozenset({"audio_too_long", "bad_sample_rate"})


def decode(data: bytes, container: str, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """Float32 mono samples and the sample rate, or `InvalidInput` with a code."""
    if container in _IN_PROCESS:
        try:
            return read_bounded(io.BytesIO(data), limits)
        except InvalidInput as exc:
            if exc.code in _FINAL:
                raise
    return decode_with_ffmpeg(data, DEMUXERS[container], limits)
