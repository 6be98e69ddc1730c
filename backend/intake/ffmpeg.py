"""Decode what libsndfile cannot (MP3, M4A/MP4, WebM/Matroska, AMR, ...) with the ffmpeg bundled in
imageio-ffmpeg, so neither the bots nor the GPU container need a system ffmpeg.

ffmpeg writes float32 mono WAV into a private temporary folder, capped whatever the input claims: `-t`
stops the output one second past the length limit, `-fs` at the bytes that length takes at the highest
accepted rate (against headers that claim absurd rates), `-max_alloc` refuses any single allocation over
`MAX_ALLOC_BYTES` (against demuxers sizing tables from a header), and a deadline kills it. Its output is
then read back through the same bounded reader as every other clip. Files rather than pipes: MP4/M4A often
keeps its index at the end, which ffmpeg must seek to.
"""

from __future__ import annotations

import subprocess
import tempfile
from functools import cache
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from backend.intake.limits import AudioLimits
from backend.intake.rejections import corrupt, not_audio
from backend.intake.soundfile_reader import read_bounded

# A valid upload decodes in well under a second (output stops at the length limit), but garbage that
# parses as a stream of tiny broken frames is worked through frame by frame: the deadline bounds it.
FFMPEG_TIMEOUT_S = 10.0
MAX_ALLOC_BYTES = 64 * 1024 * 1024
# A file whose frames fail to decode this often is garbage behind a valid header ("#!AMR" + random bytes
# decodes about half its frames into noise far beyond full scale); a damaged but real recording loses a
# few frames. ffmpeg exits with `_TOO_MANY_ERRORS` when the rate is crossed.
MAX_ERROR_RATE = 0.1
_TOO_MANY_ERRORS = 69


def decode_with_ffmpeg(data: bytes, demuxer: str, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """Float32 mono samples and rate of the first audio track; `InvalidInput` for any failure."""
    cap_seconds = limits.max_seconds + 1.0
    with tempfile.TemporaryDirectory(prefix="voicebot-clip-") as tmp:
        source, target = Path(tmp) / "upload", Path(tmp) / "decoded.wav"
        source.write_bytes(data)
        command = [
            ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "fatal",  # "error" logs a line per bad frame
            "-max_alloc", str(MAX_ALLOC_BYTES), "-max_error_rate", str(MAX_ERROR_RATE),
            "-protocol_whitelist", "file", "-f", demuxer, "-i", f"file:{source}",
            "-map", "0:a:0", "-ac", "1", "-c:a", "pcm_f32le",
            "-t", f"{cap_seconds:g}", "-fs", str(int(cap_seconds * limits.max_sample_rate * 4) + 4096),
            "-f", "wav", f"file:{target}",
        ]
        result = _run(command)
        if result.returncode == _TOO_MANY_ERRORS:
            raise corrupt("too many of its frames are damaged")
        if result.returncode != 0 or not target.exists():
            if b"matches no streams" in result.stderr:
                raise not_audio("has no audio track")
            raise corrupt("it is corrupt, truncated or uses a codec that is not supported")
        with target.open("rb") as decoded:
            return read_bounded(decoded, limits, check_header=False)


def _run(command: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg with a deadline; `subprocess.run` kills it when the deadline passes. Its stderr stays
    small: at log level "fatal" it says at most why it stopped."""
    try:
        return subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise corrupt(f"decoding it took longer than {FFMPEG_TIMEOUT_S:g} s") from exc


@cache
def ffmpeg_exe() -> str:
    """The ffmpeg binary bundled with imageio-ffmpeg."""
    return imageio_ffmpeg.get_ffmpeg_exe()
