"""Streamed speech as Discord wants it: exact 20 ms frames of 48 kHz stereo 16-bit PCM, from 24 kHz mono chunks.

discord.py's player thread calls `read()` every 20 ms, Opus-encodes what it gets and sends it; `b""` ends the
playback. The speech arrives from the event loop as float32 chunks of any length (`feed`), as the backend
generates it. In between:

- one `soxr.ResampleStream` for the whole utterance (24 -> 48 kHz), so the resampler's filter state carries
  across chunk boundaries: chunk edges leave no gap, no repeated samples and no click;
- mono to stereo (the same samples on both channels), clipped to [-1, 1] before the 16-bit conversion so loud
  samples cannot wrap around;
- a byte buffer cut into frames of exactly 3,840 bytes; the last frame is padded with silence.

`read()` never waits on the event loop and never blocks the player for long: when the generation has fallen
behind it waits up to `wait_s`, then hands the player a frame of silence and counts an underrun, so the
connection keeps its timing and the speech resumes where it was when the next chunk arrives.
`max_seconds` ends the playback after that much audio (read-aloud's per-message limit).
"""

from __future__ import annotations

import threading
import time
from collections import deque

import discord
import numpy as np
import soxr

from backend.schema import SAMPLE_RATE

DISCORD_RATE = 48_000
CHANNELS = 2
FRAME_MS = 20
FRAME_SAMPLES = DISCORD_RATE * FRAME_MS // 1000  # per channel
FRAME_BYTES = FRAME_SAMPLES * CHANNELS * 2  # 3,840
SILENCE = bytes(FRAME_BYTES)
_END = np.zeros(0, dtype=np.float32)  # what `_take` hands back once the stream has ended and everything was read


def to_discord_pcm(samples: np.ndarray) -> bytes:
    """48 kHz mono float samples as interleaved stereo 16-bit little-endian PCM."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    return np.repeat(pcm, CHANNELS).tobytes()


class StreamedPcm(discord.AudioSource):
    """A `discord.AudioSource` fed with 24 kHz mono float chunks from any thread (`feed`, then `end`)."""

    def __init__(self, *, wait_s: float = 0.005, max_seconds: float | None = None) -> None:
        self._resampler = soxr.ResampleStream(SAMPLE_RATE, DISCORD_RATE, 1, dtype="float32")
        self._chunks: deque[np.ndarray] = deque()
        self._arrived = threading.Condition()
        self._ended = False
        self._closed = False
        self._pcm = bytearray()
        self._flushed = False  # the resampler's last samples are in `_pcm`
        self._wait_s = wait_s
        self._max_frames = None if max_seconds is None else int(max_seconds * 1000 / FRAME_MS)
        self.frames = 0  # frames handed to the player, silence included
        self.underruns = 0  # frames of silence handed out after the first speech: the generation was behind
        self.first_audio_at: float | None = None  # time.perf_counter() when the first speech frame was handed out
        self.cut = False  # ended by `max_seconds`

    # -- the producer's side (the event loop) --------------------------------------------------------------
    def feed(self, chunk: np.ndarray) -> None:
        """Queue a chunk of 24 kHz mono float samples; ignored once the playback ended."""
        with self._arrived:
            if not self._closed:
                self._chunks.append(np.asarray(chunk, dtype=np.float32).reshape(-1))
                self._arrived.notify()

    def end(self) -> None:
        """No more chunks: what is queued plays out, then `read` returns b""."""
        with self._arrived:
            self._ended = True
            self._arrived.notify()

    @property
    def finished(self) -> bool:
        """The player has had everything (or the playback was stopped)."""
        return self._closed

    # -- the player's side (discord.py's player thread) ----------------------------------------------------
    def is_opus(self) -> bool:
        return False

    def read(self) -> bytes:
        if self._closed or (self._max_frames is not None and self.frames >= self._max_frames):
            self.cut = not self._closed
            self._closed = True
            return b""
        while len(self._pcm) < FRAME_BYTES:
            if self._flushed:  # everything is in the buffer: the last frame, padded with silence
                if not self._pcm:
                    self._closed = True
                    return b""
                self._pcm += bytes(FRAME_BYTES - len(self._pcm))
                break
            chunk = self._take()
            if chunk is None:  # the generation is behind: keep the connection's timing
                self.frames += 1
                self.underruns += self.first_audio_at is not None
                return SILENCE
            if chunk is _END:
                self._pcm += to_discord_pcm(self._resampler.resample_chunk(chunk, last=True))
                self._flushed = True
            else:
                self._pcm += to_discord_pcm(self._resampler.resample_chunk(chunk))
        frame = bytes(self._pcm[:FRAME_BYTES])
        del self._pcm[:FRAME_BYTES]
        self.frames += 1
        if self.first_audio_at is None:
            self.first_audio_at = time.perf_counter()
        return frame

    def _take(self) -> np.ndarray | None:
        """The next chunk; `_END` once everything was taken after `end`; None when nothing arrived in `wait_s`."""
        with self._arrived:
            if not self._chunks and not self._ended:
                self._arrived.wait(self._wait_s)
            if self._chunks:
                return self._chunks.popleft()
            return _END if self._ended else None

    def cleanup(self) -> None:
        """Called by discord.py when the playback ends or is stopped: later chunks are dropped."""
        with self._arrived:
            self._closed = True
            self._chunks.clear()
