"""Reference-clip intake at the edge, shared by the CLI and both bots: any upload in, a checked clip out.

Users upload whatever their phone or browser recorded (M4A, WebM/Opus, OGG/Opus, MP3, WAV ...) under
whatever name, so the type is sniffed from the bytes, never the file name. libsndfile decodes what it
can in-process (`backend.audio.read_audio`); the imageio-ffmpeg binary decodes the rest. The clip is
then held to the same `backend.audio` limits the backend applies, and re-encoded as the one format the
backend is sent: 16-bit PCM mono WAV.

Every bad upload ends as `InvalidInput` with a specific code and a message the bots show as is.
`read_reference` blocks (ffmpeg may run for up to `FFMPEG_TIMEOUT_S`): async callers should run it in a
thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import codecs
import io
import re
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PureWindowsPath

import filetype
import imageio_ffmpeg
import numpy as np
import soundfile as sf

from backend.audio import AudioLimits, check_clip, check_size, read_audio, to_wav
from backend.errors import InvalidInput

# A valid upload decodes in well under a second (output stops at the length limit), but garbage that
# parses as a stream of tiny broken frames (raw AMR, say) is worked through frame by frame to the end:
# about 4 s per MiB. The deadline bounds what one such upload costs.
FFMPEG_TIMEOUT_S = 10.0
SUPPORTED = "WAV, MP3, M4A, OGG, Opus, FLAC or WebM"
DEFAULT_LIMITS = AudioLimits()

# Container (as named by `filetype`) -> ffmpeg demuxer. Forcing the demuxer we detected keeps ffmpeg from
# guessing some other format out of garbage, and keeps playlist demuxers (HLS, concat) that open other
# files or URLs out of reach.
_DEMUXERS: dict[str, str] = {
    "wav": "wav", "flac": "flac", "ogg": "ogg", "aiff": "aiff",
    "mp3": "mp3", "m4a": "mp4", "aac": "aac", "amr": "amr",
    "mp4": "mp4", "m4v": "mp4", "mov": "mov", "3gp": "3gp",
    "webm": "webm", "mkv": "matroska", "avi": "avi", "wmv": "asf", "flv": "flv", "mpg": "mpeg",
}
_IN_PROCESS = frozenset({"wav", "flac", "ogg", "aiff"})  # libsndfile reads these (OGG: Vorbis and Opus)

# libsndfile reports this many frames when a header leaves the length open (a FLAC streamed to a pipe).
_UNKNOWN_LENGTH = 2**62
_CONTROLS_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")  # all but tab, newlines and form feed
_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
_VOWELS = frozenset("AEIOU")  # "an EXE file", "a PNG image"
_MAX_NAME_CHARS = 60


@dataclass(frozen=True, eq=False)
class ReferenceClip:
    """A reference clip that passed every check: decoded samples for the edge, `wav` for the backend."""

    samples: np.ndarray  # float32 mono, as decoded (no gain or resampling)
    sample_rate: int
    format: str  # the container detected from the bytes: "wav", "mp3", "m4a", "webm", "ogg" ...
    wav: bytes  # the same samples as 16-bit PCM mono WAV, what the backend receives

    @property
    def seconds(self) -> float:
        return self.samples.size / self.sample_rate


def read_reference(data: bytes, limits: AudioLimits = DEFAULT_LIMITS, filename: str | None = None) -> ReferenceClip:
    """Check, sniff and decode an upload.

    `filename` only goes into error messages ("The reference clip “memo.m4a” is silent ..."), so the user
    knows which upload failed; it never decides the format.
    """
    try:
        return _read(data, limits)
    except InvalidInput as exc:
        name = _display_name(filename or "")
        if not name:
            raise
        named = exc.message.replace("The reference clip", f"The reference clip “{name}”", 1)
        raise InvalidInput(named, code=exc.code) from exc


def detect_format(data: bytes) -> str:
    """The audio container the bytes hold, or `InvalidInput(code="not_audio")` saying what they look like."""
    kind = filetype.guess(data)
    if kind is not None and kind.extension in _DEMUXERS:
        return kind.extension
    if kind is not None:
        raise _not_audio(f"looks like {_describe_kind(kind.extension, kind.mime)}, not audio")
    if _starts_with_mp3_frame(data):
        return "mp3"
    raise _not_audio(_describe_unknown(data))


def _starts_with_mp3_frame(data: bytes) -> bool:
    """An MP3 without an ID3 tag starts with a frame header; `filetype` knows only 3 of its 6 sync words."""
    if len(data) < 3 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return False
    version, layer = (data[1] >> 3) & 0b11, (data[1] >> 1) & 0b11
    bitrate, rate = data[2] >> 4, (data[2] >> 2) & 0b11
    return version != 0b01 and layer == 0b01 and bitrate != 0b1111 and rate != 0b11


def _read(data: bytes, limits: AudioLimits) -> ReferenceClip:
    """Cheapest check first: size, then sniffing, then decoding, then the checks on the samples."""
    check_size(len(data), limits)
    container = detect_format(data)
    samples, sample_rate = _decode(data, container, limits)
    check_clip(samples, sample_rate, limits)
    return ReferenceClip(samples, sample_rate, container, to_wav(samples, sample_rate))


def _decode(data: bytes, container: str, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """libsndfile when it can read the file and its header gives the length; ffmpeg otherwise.

    ffmpeg also gets the files libsndfile rejects or finds no frames in: WAV and OGG can carry codecs
    it lacks (ADPCM or GSM in WAV, Speex in OGG), it gives up on an OGG cut short that ffmpeg still
    reads, and a corrupt file fails in ffmpeg too, as `corrupt_audio`.
    """
    if container in _IN_PROCESS:
        info = _soundfile_info(data)
        if info is not None and 0 < info.frames < _UNKNOWN_LENGTH:
            _check_declared_length(info, limits)
            try:
                return read_audio(data)
            except InvalidInput:
                pass  # ffmpeg gets its chance below
    return _decode_with_ffmpeg(data, _DEMUXERS[container], limits)


def _soundfile_info(data: bytes) -> sf._SoundFileInfo | None:
    """The header as libsndfile reads it, or None when libsndfile cannot open the file."""
    try:
        return sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, EOFError):
        return None


def _check_declared_length(info: sf._SoundFileInfo, limits: AudioLimits) -> None:
    """Refuse a header that declares far more audio than a valid clip holds, before libsndfile allocates it.

    FLAC and Vorbis squeeze digital silence by four orders of magnitude: a 10 MiB upload can declare
    100+ hours, about 14 GB as float32. The bound allows 30 s of stereo at the highest accepted rate.
    """
    if info.frames * info.channels <= 2 * limits.max_seconds * limits.max_sample_rate:
        return
    raise InvalidInput(
        f"The reference clip declares {info.frames / max(info.samplerate, 1):.0f} s of audio; the limit is "
        f"{limits.max_seconds:g} s. Trim it and retry.",
        code="audio_too_long",
    )


def _decode_with_ffmpeg(data: bytes, demuxer: str, limits: AudioLimits) -> tuple[np.ndarray, int]:
    """Decode the first audio track to float32 mono WAV with the bundled ffmpeg, then read that.

    Files, not pipes: MP4/M4A often keeps its index at the end, which ffmpeg must seek to. The output
    stops just past the length limit (`-t`) and at a byte cap (`-fs`, against headers that claim absurd
    sample rates), so a hostile upload cannot fill memory or disk.
    """
    cap_seconds = limits.max_seconds + 1.0
    with tempfile.TemporaryDirectory(prefix="voicebot-clip-") as tmp:
        source, target = Path(tmp) / "upload", Path(tmp) / "decoded.wav"
        source.write_bytes(data)
        command = [
            _ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "fatal",  # "error" logs a line per bad frame
            "-protocol_whitelist", "file", "-f", demuxer, "-i", f"file:{source}",
            "-map", "0:a:0", "-ac", "1", "-c:a", "pcm_f32le",
            "-t", f"{cap_seconds:g}", "-fs", str(int(cap_seconds * limits.max_sample_rate * 4) + 4096),
            "-f", "wav", f"file:{target}",
        ]
        result = _run_ffmpeg(command)
        if result.returncode != 0 or not target.exists():
            raise _ffmpeg_failure(result.stderr)
        samples, sample_rate = read_audio(target.read_bytes())
    if samples.size == 0:
        raise _corrupt("it contains no audio that can be decoded")
    if samples.size / sample_rate > limits.max_seconds:
        raise InvalidInput(
            f"The reference clip is longer than the {limits.max_seconds:g} s limit. Trim it and retry.",
            code="audio_too_long",
        )
    return samples, sample_rate


def _run_ffmpeg(command: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg with a deadline; `subprocess.run` kills it when the deadline passes."""
    try:
        return subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise _corrupt(f"decoding it took longer than {FFMPEG_TIMEOUT_S:g} s") from exc


@cache
def _ffmpeg() -> str:
    """The ffmpeg binary bundled with imageio-ffmpeg, so no system ffmpeg (or ffprobe) is needed."""
    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg_failure(stderr: bytes) -> InvalidInput:
    """A video without sound gets its own message; any other ffmpeg failure means a broken file."""
    if b"matches no streams" in stderr:
        return _not_audio("has no audio track")
    return _corrupt("it is corrupt, truncated or uses a codec that is not supported")


def _corrupt(reason: str) -> InvalidInput:
    return InvalidInput(f"The reference clip could not be decoded: {reason}.", code="corrupt_audio")


def _not_audio(what: str) -> InvalidInput:
    return InvalidInput(
        f"The reference clip {what}. Send a voice recording ({SUPPORTED}).", code="not_audio"
    )


def _describe_kind(extension: str, mime: str) -> str:
    """'a PNG image', 'an EXE file', 'a PDF file' from what `filetype` recognised."""
    noun = next((n for n in ("image", "video", "font") if mime.startswith(n) or f"/{n}" in mime), "file")
    name = extension.upper()
    article = "an" if name[0] in _VOWELS else "a"
    return f"{article} {name} {noun}"


def _describe_unknown(data: bytes) -> str:
    """Name the common mistakes `filetype` cannot: a saved web page (a failed download) or plain text."""
    text = _leading_text(data)
    if text is None:
        return "is not in a recognised audio format"
    if text.lstrip().lower().startswith(("<!doctype html", "<html")):
        return "looks like a web page (HTML), not audio (did the download fail?)"
    return "looks like text, not audio"


def _leading_text(data: bytes) -> str | None:
    """The first 4 KiB as text if they are UTF-8 without control characters, else None."""
    try:  # incremental, so a multi-byte character cut at 4 KiB is not an error
        text = codecs.getincrementaldecoder("utf-8")().decode(data[:4096], final=False)
    except UnicodeDecodeError:
        return None
    return text if text and not _CONTROLS_IN_TEXT.search(text) else None


def _display_name(filename: str) -> str:
    """The base name, without control characters and cut short: names are user input shown in chat."""
    name = _CONTROLS.sub("", PureWindowsPath(filename).name).strip()
    return name if len(name) <= _MAX_NAME_CHARS else name[: _MAX_NAME_CHARS - 1] + "…"
