"""What an upload is, from its bytes: users upload whatever their phone or browser recorded under any name.

The container decides the decoder (and the ffmpeg demuxer, forced, so ffmpeg never guesses some other
format out of garbage and never reaches playlist demuxers that open other files or URLs). Uploads that are
recognisably something else (an image, a PDF, a web page, text) are refused with what they look like.
"""

from __future__ import annotations

import codecs
import re

import filetype

from backend.errors import InvalidInput
from backend.intake.rejections import not_audio

# Container (as named by `filetype`) -> ffmpeg demuxer.
DEMUXERS: dict[str, str] = {
    "wav": "wav", "flac": "flac", "ogg": "ogg", "aiff": "aiff",
    "mp3": "mp3", "m4a": "mp4", "aac": "aac", "amr": "amr",
    "mp4": "mp4", "m4v": "mp4", "mov": "mov", "3gp": "3gp",
    "webm": "webm", "mkv": "matroska", "avi": "avi", "wmv": "asf", "flv": "flv", "mpg": "mpeg",
}
_CONTROLS_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")  # all but tab, newlines and form feed
_VOWELS = frozenset("AEIOU")  # "an EXE file", "a PNG image"


def sniff(data: bytes) -> str | None:
    """The audio container the bytes hold; None for binary no signature matches (it may still be an MP3
    whose first frame is not at byte 0, which only a decoder can tell); `InvalidInput(code="not_audio")`
    saying what the bytes look like when they are recognisably not audio."""
    kind = filetype.guess(data)
    if kind is not None and kind.extension in DEMUXERS:
        return kind.extension
    if kind is not None:
        raise not_audio(f"looks like {_describe_kind(kind.extension, kind.mime)}, not audio")
    if _starts_with_mp3_frame(data):
        return "mp3"
    text = _leading_text(data)
    if text is None:
        return None
    if text.lstrip().lower().startswith(("<!doctype html", "<html")):
        raise not_audio("looks like a web page (HTML), not audio (did the download fail?)")
    raise not_audio("looks like text, not audio")


def unrecognised() -> InvalidInput:
    """What an upload is told when neither a signature nor the MP3 decoder recognised it."""
    return not_audio("is not in a recognised audio format")


def _starts_with_mp3_frame(data: bytes) -> bool:
    """An MP3 without an ID3 tag starts with a frame header; `filetype` knows only 3 of its 6 sync words."""
    if len(data) < 3 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return False
    version, layer = (data[1] >> 3) & 0b11, (data[1] >> 1) & 0b11
    bitrate, rate = data[2] >> 4, (data[2] >> 2) & 0b11
    return version != 0b01 and layer == 0b01 and bitrate != 0b1111 and rate != 0b11


def _describe_kind(extension: str, mime: str) -> str:
    """'a PNG image', 'an EXE file', 'a PDF file' from what `filetype` recognised."""
    noun = next((n for n in ("image", "video", "font") if mime.startswith(n) or f"/{n}" in mime), "file")
    name = extension.upper()
    article = "an" if name[0] in _VOWELS else "a"
    return f"{article} {name} {noun}"


def _leading_text(data: bytes) -> str | None:
    """The first 4 KiB as text if they are UTF-8 without control characters, else None."""
    try:  # incremental, so a multi-byte character cut at 4 KiB is not an error
        text = codecs.getincrementaldecoder("utf-8")().decode(data[:4096], final=False)
    except UnicodeDecodeError:
        return None
    return text if text and not _CONTROLS_IN_TEXT.search(text) else None
