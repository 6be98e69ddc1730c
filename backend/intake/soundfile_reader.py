"""Decode what libsndfile reads (WAV, FLAC, OGG Vorbis/Opus, AIFF) into float32 mono, within a fixed budget.

A header can claim anything: 26 hours of FLAC in 1 MB, 2**36 frames in 172 bytes. So nothing here is sized
from the header. The sample rate is checked against the limits first; the output buffer is then
`max_seconds x sample_rate` float32 (at most 30 s x 192 kHz x 4 B = 23 MB; pages are only touched as they
fill), and the file is read in blocks of at most `BLOCK_SAMPLES` interleaved samples, whatever the channel
count, stopping one frame past the limit. A clip thus costs its cap plus a constant, never what it declares.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
import soundfile as sf

from backend.intake.limits import AudioLimits, check_declared_length, check_length, check_sample_rate
from backend.intake.rejections import corrupt

BLOCK_SAMPLES = 1 << 16  # 256 KiB of float32 per read
# libsndfile reports a length of about 2**63 when the header leaves it open (a FLAC streamed to a pipe).
_UNKNOWN_LENGTH = 2**62
_DECODER_ERRORS = (sf.LibsndfileError, RuntimeError, ValueError, TypeError, EOFError, OverflowError)


def read_bounded(source: BinaryIO, limits: AudioLimits, *, check_header: bool = True) -> tuple[np.ndarray, int]:
    """Float32 mono samples and the sample rate; `InvalidInput` for a bad rate, a declared or decoded length
    over the limit, or a file libsndfile cannot open or read.

    `check_header=False` for ffmpeg's output: its header states the length ffmpeg was capped at, which says
    nothing about what the upload declared.
    """
    try:
        with sf.SoundFile(source) as audio:
            sample_rate, channels = int(audio.samplerate), int(audio.channels)
            check_sample_rate(sample_rate, limits)
            if check_header and audio.frames < _UNKNOWN_LENGTH:
                check_declared_length(audio.frames, sample_rate, limits)
            samples = _read_mono(audio, channels, limits.max_frames(sample_rate) + 1)
    except _DECODER_ERRORS as exc:
        raise corrupt("it is corrupt, truncated or not a supported audio file") from exc
    except MemoryError as exc:
        raise corrupt("decoding it needs more memory than a reference clip may use") from exc
    check_length(samples.size, sample_rate, limits)
    return samples, sample_rate


def _read_mono(audio: sf.SoundFile, channels: int, cap: int) -> np.ndarray:
    """Up to `cap` frames, channels averaged block by block, so only one block is ever held interleaved."""
    mono = np.empty(cap, dtype=np.float32)
    block = np.empty((max(1, BLOCK_SAMPLES // channels), channels), dtype=np.float32)
    filled = 0
    while filled < cap:
        frames = audio.read(out=block[: cap - filled])
        if len(frames) == 0:
            break
        mono[filled : filled + len(frames)] = frames.mean(axis=1)
        filled += len(frames)
    return mono[:filled]
