"""Decompression bombs and lying headers, made in code: hostile reference clips for the intake's tests and
`benchmarks/bench_intake.py`.

Digital silence compresses by orders of magnitude (10 minutes of FLAC or Opus silence is 0.1-0.4 MB), and a
header can claim any length at all; an intake that sizes its buffers from either runs out of memory.
Each bomb is `silence` of a given length in one format, optionally with its length field rewritten: "long"
keeps the true (over-limit) length, "unknown" / "says-3s" hide it, "says-hours" claims far more than is there.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.clips import encode, ffmpeg

BOMB_RATE = 48_000
# ffmpeg output options per bomb format, at the lowest sensible bitrates (silence costs next to nothing).
ENCODINGS: dict[str, tuple[str, ...]] = {
    "flac": ("-c:a", "flac", "-compression_level", "8", "-f", "flac"),
    "opus": ("-c:a", "libopus", "-b:a", "6k", "-f", "ogg"),
    "vorbis": ("-c:a", "libvorbis", "-q:a", "-1", "-f", "ogg"),
    "mp3": ("-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"),
    "webm": ("-c:a", "libopus", "-b:a", "6k", "-f", "webm"),
    "m4a": ("-c:a", "aac", "-b:a", "16k", "-f", "ipod"),
    "wav": ("-c:a", "pcm_u8", "-ar", "8000", "-f", "wav"),  # no compression: 8-bit at 8 kHz is the most per byte
}


def silence(format: str, seconds: float, directory: Path) -> bytes:
    """`seconds` of digital silence at 48 kHz mono in `format`, encoded once per directory."""
    path = directory / f"silence-{seconds:g}s.{format}"
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", f"anullsrc=r={BOMB_RATE}:cl=mono", "-t", f"{seconds:g}",
               *ENCODINGS[format], str(path))
    return path.read_bytes()


def tiny_flac() -> bytes:
    """A FLAC as small as libsndfile writes one: STREAMINFO, a short tag and one frame of silence (97 bytes)."""
    return encode(np.zeros(4096, np.float32), BOMB_RATE, format="FLAC", subtype="PCM_16")


def flac_declaring(flac: bytes, frames: int) -> bytes:
    """STREAMINFO's total sample count (36 bits from byte 21; 0 means unknown) set to `frames`."""
    data = bytearray(flac)
    data[21] = (data[21] & 0xF0) | (frames >> 32 & 0x0F)
    data[22:26] = (frames & 0xFFFFFFFF).to_bytes(4, "big")
    return bytes(data)


def mp3_declaring(mp3: bytes, frames: int) -> bytes:
    """The Xing/Info tag's frame count (what players and ffmpeg take the length from) set to `frames`."""
    data = bytearray(mp3)
    tag = max(data.find(b"Xing"), data.find(b"Info"))
    assert tag > 0 and data[tag + 7] & 1, "the encoder wrote no frame count"
    data[tag + 8 : tag + 12] = frames.to_bytes(4, "big")
    return bytes(data)


def webm_declaring(webm: bytes, milliseconds: float) -> bytes:
    """The Segment Info's Duration (EBML id 0x4489, an 8-byte float in ms) set to `milliseconds`."""
    data = bytearray(webm)
    at = data.find(b"\x44\x89\x88")
    assert at > 0, "no 8-byte Duration element"
    data[at + 3 : at + 11] = struct.pack(">d", milliseconds)
    return bytes(data)


def wav_declaring(wav: bytes, data_bytes: int) -> bytes:
    """The RIFF and data chunk sizes set as if the data chunk held `data_bytes` (0xFFFFFFFF: streamed)."""
    data = bytearray(wav)
    at = data.find(b"data", 12)
    data[at + 4 : at + 8] = min(data_bytes, 0xFFFFFFFF).to_bytes(4, "little")
    data[4:8] = min(data_bytes + at, 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(data)


def wav_at_rate(wav: bytes, sample_rate: int) -> bytes:
    """The fmt chunk's sample rate (and byte rate, for 8-bit mono) set to `sample_rate`."""
    data = bytearray(wav)
    data[24:28] = data[28:32] = sample_rate.to_bytes(4, "little")
    return bytes(data)


def bombs(seconds: float, directory: Path) -> dict[str, Callable[[], bytes]]:
    """Every hostile clip by name, each holding `seconds` of silence (or claiming hours in a few bytes)."""
    def long(format: str) -> Callable[[], bytes]:
        return lambda: silence(format, seconds, directory)

    return {
        "flac-long": long("flac"),
        "flac-unknown-length": lambda: flac_declaring(silence("flac", seconds, directory), 0),
        "flac-says-3s": lambda: flac_declaring(silence("flac", seconds, directory), 3 * BOMB_RATE),
        "flac-says-hours-in-97-bytes": lambda: flac_declaring(tiny_flac(), 2**36 - 1),
        "opus-long": long("opus"),
        "vorbis-long": long("vorbis"),
        "mp3-long": long("mp3"),
        "mp3-says-3s": lambda: mp3_declaring(silence("mp3", seconds, directory), 3 * BOMB_RATE // 1152),
        "webm-long": long("webm"),
        "webm-says-3s": lambda: webm_declaring(silence("webm", seconds, directory), 3000.0),
        "webm-says-30-years": lambda: webm_declaring(silence("webm", seconds, directory), 1e12),
        "m4a-long": long("m4a"),
        "wav-long": long("wav"),
        "wav-streamed": lambda: wav_declaring(silence("wav", seconds, directory), 0xFFFFFFFF),
        "wav-says-4gb-in-1kb": lambda: wav_declaring(silence("wav", 1, directory)[:1024], 0xFFFFFFFF),
        "wav-at-1ghz": lambda: wav_at_rate(silence("wav", 1, directory), 1_000_000_000),
    }
