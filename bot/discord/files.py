"""The result as a Discord file: the WAV when it fits `interaction.filesize_limit`, else OGG/Opus, else an error.

Discord refuses uploads above the per-interaction limit (10 MiB on unboosted servers). Speech compresses ~20x
as Opus, so only very long results ever need it; ffmpeg comes from the imageio-ffmpeg wheel, driven by pydub.
"""

from __future__ import annotations

import asyncio
import io
import warnings
from dataclasses import dataclass
from pathlib import PurePath

import discord

from backend.errors import VoicebotError

MIB = 1024 * 1024
# Tried in order until one fits: transparent speech first, then a bitrate still intelligible for voice.
OPUS_BITRATES = ("64k", "24k")


class ResultTooLarge(VoicebotError):
    """Even the smallest encoding exceeds the upload limit of the place the user asked in."""

    code = "result_too_large"


@dataclass(frozen=True)
class ResultFile:
    data: bytes
    filename: str
    note: str | None = None  # told to the user when the audio was transcoded

    def to_discord(self) -> discord.File:
        return discord.File(io.BytesIO(self.data), filename=self.filename)


def _audio_segment():
    """pydub's AudioSegment with the bundled ffmpeg (pydub warns at import when none is on PATH)."""
    import imageio_ffmpeg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydub import AudioSegment

    AudioSegment.converter = imageio_ffmpeg.get_ffmpeg_exe()
    return AudioSegment


def to_opus(wav: bytes, bitrate: str) -> bytes:
    """Encode WAV bytes as OGG/Opus (blocking: runs ffmpeg)."""
    out = io.BytesIO()
    _audio_segment().from_wav(io.BytesIO(wav)).export(out, format="ogg", codec="libopus", bitrate=bitrate)
    return out.getvalue()


async def fit_result(wav: bytes, filename: str, limit: int) -> ResultFile:
    """The WAV if it fits `limit` bytes, else the first Opus encoding that does; `ResultTooLarge` otherwise."""
    if len(wav) <= limit:
        return ResultFile(wav, filename)
    stem = PurePath(filename).stem
    smallest = len(wav)
    for bitrate in OPUS_BITRATES:
        data = await asyncio.to_thread(to_opus, wav, bitrate)
        smallest = min(smallest, len(data))
        if len(data) <= limit:
            return ResultFile(data, f"{stem}.ogg", note=(
                f"The WAV ({len(wav) / MIB:.1f} MiB) is over this server's {limit / MIB:.1f} MiB upload limit, "
                f"so here it is as OGG/Opus ({bitrate}bps, {len(data) / MIB:.2f} MiB)."))
    raise ResultTooLarge(
        f"The result is too large to upload here: {len(wav) / MIB:.1f} MiB as WAV and still "
        f"{smallest / MIB:.2f} MiB as OGG/Opus, over this server's {limit / MIB:.2f} MiB limit. Try a shorter text.")
