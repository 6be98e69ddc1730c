"""The one reference-clip intake: any upload in, a checked clip out, for the edge and the backend alike.

The bots and the CLI call `read_reference` (they also need the WAV they send); the engine calls
`load_reference` on whatever reached the backend, so a request that bypasses the bots meets the same checks.
Cheapest first: size, then sniffing, then decoding under a fixed memory cap, then the checks on samples.
Every bad upload ends as `InvalidInput` with a specific code and a message the bots show as is. Both
block (ffmpeg may run for up to `ffmpeg.FFMPEG_TIMEOUT_S`): async callers run them in a thread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PureWindowsPath

import numpy as np

from backend.audio import to_wav
from backend.errors import InvalidInput
from backend.intake.decode import decode
from backend.intake.ffmpeg import decode_with_ffmpeg
from backend.intake.limits import AudioLimits, check_size
from backend.intake.sniff import sniff, unrecognised
from backend.intake.verdict import check_signal, check_speech

DEFAULT_LIMITS = AudioLimits()
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
_MAX_NAME_CHARS = 60


@dataclass(frozen=True, eq=False)
class Clip:
    """A reference clip that passed every check."""

    samples: np.ndarray  # float32 mono, as decoded (no gain or resampling)
    sample_rate: int
    format: str  # the container detected from the bytes: "wav", "mp3", "m4a", "webm", "ogg" ...

    @property
    def seconds(self) -> float:
        return self.samples.size / self.sample_rate


@dataclass(frozen=True, eq=False)
class ReferenceClip(Clip):
    """A checked clip with what the backend is sent: the same samples as 16-bit PCM mono WAV."""

    wav: bytes


def load_reference(data: bytes, limits: AudioLimits = DEFAULT_LIMITS) -> Clip:
    """Size, sniff, decode (bounded) and judge an upload; `InvalidInput` with a code for any bad one."""
    clip = load_audio(data, limits)
    check_speech(clip.samples, clip.sample_rate, limits)
    return clip


def load_audio(data: bytes, limits: AudioLimits) -> Clip:
    """`load_reference` without the speech check: any sound within the limits (the watermark check takes
    generated clips, music or noise alike). Messages still say "The reference clip": `renamed` rewords them."""
    check_size(len(data), limits)
    container = sniff(data)
    if container is None:
        container = "mp3"
        samples, sample_rate = _decode_unrecognised(data, limits)
    else:
        samples, sample_rate = decode(data, container, limits)
    check_signal(samples)
    return Clip(samples, sample_rate, container)


def renamed(exc: InvalidInput, subject: str, filename: str | None = None) -> InvalidInput:
    """`exc` with "The reference clip" in its message replaced by `subject` ("The clip"), followed by the
    upload's display name when there is one, so the user knows which file failed and what it was taken for."""
    name = _display_name(filename or "")
    named = f"{subject} “{name}”" if name else subject
    return InvalidInput(exc.message.replace("The reference clip", named, 1), code=exc.code)


def read_reference(data: bytes, limits: AudioLimits = DEFAULT_LIMITS, filename: str | None = None) -> ReferenceClip:
    """`load_reference` plus the WAV for the backend.

    `filename` only goes into error messages ("The reference clip “memo.m4a” is silent ..."), so the user
    knows which upload failed; it never decides the format.
    """
    try:
        clip = load_reference(data, limits)
    except InvalidInput as exc:
        if not _display_name(filename or ""):
            raise
        raise renamed(exc, "The reference clip", filename) from exc
    return ReferenceClip(clip.samples, clip.sample_rate, clip.format, to_wav(clip.samples, clip.sample_rate))


def _decode_unrecognised(data: bytes, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """Binary that matches no signature may be an MP3 whose first frame is not at byte 0 (a cut or damaged
    tag); ffmpeg's MP3 demuxer finds frames anywhere, and needs two in a row before it calls it MP3."""
    try:
        return decode_with_ffmpeg(data, "mp3", limits)
    except InvalidInput as exc:
        if exc.code == "corrupt_audio":
            raise unrecognised() from exc
        raise


def _display_name(filename: str) -> str:
    """The base name, without control characters and cut short: names are user input shown in chat."""
    name = _CONTROLS.sub("", PureWindowsPath(filename).name).strip()
    return name if len(name) <= _MAX_NAME_CHARS else name[: _MAX_NAME_CHARS - 1] + "…"
