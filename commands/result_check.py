"""Every backend answer is checked before it is posted: what a user receives as "your voice clone" is real audio.

A backend is a remote service (or a model that can misbehave): its answer might be no result at all, random
bytes, an empty or truncated WAV, another sample rate or channel count, or audio that does not match the length
it reports. Any of these is a backend failure (`BackendFailed`, code "bad_audio") with the problem in its
operator detail, never a posted file. The header is read by libsndfile (C, header and chunk list only), so a
hostile answer costs bounded time; the size is capped before that.
"""

from __future__ import annotations

import io
import math

import soundfile as sf

from backend.errors import BackendFailed
from backend.schema import FRAME_SECONDS, SAMPLE_RATE, CloneResult

SAMPLES_PER_FRAME = round(FRAME_SECONDS * SAMPLE_RATE)  # 1920
CHANNELS = 1
SUBTYPE = "PCM_16"
# The engine caps a generation at 2048 frames (~164 s); anything far longer is not an answer to one clone.
MAX_AUDIO_SECONDS = 600.0
MAX_AUDIO_BYTES = int(MAX_AUDIO_SECONDS * SAMPLE_RATE * 2) + 64 * 1024  # PCM16 mono plus generous headers
USER_MESSAGE = "The voice backend sent back unusable audio; please try again later."


def bad_audio(problem: str) -> BackendFailed:
    return BackendFailed(USER_MESSAGE, code="bad_audio", detail=problem)


def check_result(answer: object) -> CloneResult:
    """`answer` if it is a `CloneResult` whose audio is a non-empty 24 kHz mono 16-bit PCM RIFF/WAVE file
    lasting `audio_seconds` (within one frame); else raise `bad_audio` naming the problem."""
    if not isinstance(answer, CloneResult):
        raise bad_audio(f"the answer is {type(answer).__name__}, not a clone result")
    audio = answer.audio
    if len(audio) > MAX_AUDIO_BYTES:
        raise bad_audio(f"{len(audio)} bytes of audio, over the {MAX_AUDIO_BYTES} byte limit")
    if audio[:4] != b"RIFF" or audio[8:12] != b"WAVE":
        raise bad_audio("the audio is not a RIFF/WAVE file")
    try:
        info = sf.info(io.BytesIO(audio))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, EOFError) as exc:
        raise bad_audio(f"the WAV file cannot be read: {type(exc).__name__}") from None
    found = (info.samplerate, info.channels, info.subtype)
    if found != (SAMPLE_RATE, CHANNELS, SUBTYPE):
        raise bad_audio(f"the WAV file is {found}, expected {(SAMPLE_RATE, CHANNELS, SUBTYPE)}")
    if answer.sample_rate != SAMPLE_RATE:
        raise bad_audio(f"the answer reports {answer.sample_rate} Hz")
    if info.frames <= 0:
        raise bad_audio("the WAV file holds no samples")
    reported = answer.audio_seconds
    # in samples, so "within one frame" is exact (2.0 s against 2.08 s is one frame, not a hair more)
    if not math.isfinite(reported) or abs(info.frames - round(reported * SAMPLE_RATE)) > SAMPLES_PER_FRAME:
        raise bad_audio(f"the WAV file lasts {info.frames / SAMPLE_RATE:.3f} s but the answer reports {reported} s")
    return answer
