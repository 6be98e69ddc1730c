"""Generated speech in the formats OpenAI's speech API answers with: `wav`, `mp3`, `opus` (in Ogg), `flac` and
`pcm` (raw 16-bit little-endian mono at 24 kHz, no header).

Everything but `pcm` is encoded by the ffmpeg bundled with imageio-ffmpeg (the one the intake decodes with),
fed 16-bit PCM on stdin and read from stdout as it encodes, so the same encoder serves a whole clip and a
stream of chunks: what the source has produced is encoded and sent while the rest is still being generated.
ffmpeg writes a streamed WAV's sizes as 0xFFFFFFFF (length unknown), which players and libsndfile read to the
end of the data; the whole-clip path sends the engine's own WAV unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from enum import StrEnum

import anyio
import soundfile as sf
import structlog

from backend.errors import BackendFailed
from backend.intake.ffmpeg import FFMPEG_TIMEOUT_S, ffmpeg_exe
from backend.schema import SAMPLE_RATE

log = structlog.get_logger(__name__)
READ_BYTES = 64 * 1024  # what one chunk of the answer holds at most


class AudioFormat(StrEnum):
    WAV = "wav"
    MP3 = "mp3"
    OPUS = "opus"
    FLAC = "flac"
    PCM = "pcm"


MEDIA_TYPES = {AudioFormat.WAV: "audio/wav", AudioFormat.MP3: "audio/mpeg", AudioFormat.OPUS: "audio/ogg",
               AudioFormat.FLAC: "audio/flac", AudioFormat.PCM: "audio/pcm"}
# Speech at 24 kHz mono: 96 kb/s MP3 and 48 kb/s Opus are transparent for a voice. Ogg pages every 200 ms (not
# the default second), so a streamed Opus answer starts playing soon.
_CODECS: dict[AudioFormat, tuple[str, ...]] = {
    AudioFormat.WAV: ("-c:a", "pcm_s16le", "-f", "wav"),
    AudioFormat.MP3: ("-c:a", "libmp3lame", "-b:a", "96k", "-f", "mp3"),
    AudioFormat.OPUS: ("-c:a", "libopus", "-b:a", "48k", "-page_duration", "200000", "-f", "ogg"),
    AudioFormat.FLAC: ("-c:a", "flac", "-f", "flac"),
}




def wav_pcm16(wav: bytes) -> bytes:
    """The samples of the engine's WAV (16-bit mono) as raw PCM, unchanged."""
    samples, _ = sf.read(io.BytesIO(wav), dtype="int16")
    return samples.astype("<i2").tobytes()


async def one_chunk(pcm: bytes) -> AsyncIterator[bytes]:
    yield pcm


async def encode_whole(pcm: bytes, audio_format: AudioFormat) -> bytes:
    """A whole clip's PCM in `audio_format`."""
    return b"".join([chunk async for chunk in encode(one_chunk(pcm), audio_format)])


async def encode(pcm: AsyncIterator[bytes], audio_format: AudioFormat) -> AsyncIterator[bytes]:
    """The encoded audio of the 24 kHz mono 16-bit PCM chunks `pcm`, in pieces of at most `READ_BYTES`, each
    as soon as the encoder has written it. An error of `pcm` (the generation failing) is raised after what
    was encoded before it; an encoder failure is `BackendFailed`. Closing the iterator early stops both."""
    if audio_format is AudioFormat.PCM:
        try:
            async for chunk in pcm:
                for start in range(0, len(chunk), READ_BYTES):
                    yield chunk[start:start + READ_BYTES]
        finally:
            await pcm.aclose()  # type: ignore[attr-defined]
        return
    process = await asyncio.create_subprocess_exec(
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1",
        "-i", "pipe:0", "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
        "-flush_packets", "1", *_CODECS[audio_format], "pipe:1",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    feeding = asyncio.create_task(_feed(pcm, process))
    complete = False  # ffmpeg wrote its last byte; otherwise the consumer stopped early, or the encoder failed
    try:
        while True:
            # While chunks are still coming, the source's own deadline bounds the wait; after the last one,
            # ffmpeg has `FFMPEG_TIMEOUT_S` to finish.
            timeout = FFMPEG_TIMEOUT_S if feeding.done() else None
            try:
                data = await asyncio.wait_for(process.stdout.read(READ_BYTES), timeout)  # type: ignore[union-attr]
            except TimeoutError:
                raise _failed(audio_format, "timed out") from None
            if not data:
                complete = True
                break
            yield data
    finally:
        # Shielded: when the client goes away, Starlette's (anyio's) cancellation hits every await in the
        # cancelled scope, and this cleanup must still finish.
        with anyio.CancelScope(shield=True):
            if complete:  # ffmpeg is exiting: a failure there leaves nothing for the chunks still to come
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), FFMPEG_TIMEOUT_S)
            if not complete or process.returncode != 0:
                feeding.cancel()
                if process.returncode is None:
                    process.kill()
            with contextlib.suppress(BaseException):
                await feeding
            # Both pipes read to their end (what is left of a killed ffmpeg is at most its pipe buffers), then
            # the exit: asyncio closes a subprocess's transport only then; an unread pipe would hold it open
            # past its event loop.
            try:
                _, stderr = await asyncio.wait_for(process.communicate(), FFMPEG_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                raise _failed(audio_format, "timed out") from None
    source_error = None if feeding.cancelled() else feeding.exception()
    if source_error is not None and not isinstance(source_error, (BrokenPipeError, ConnectionResetError)):
        raise source_error
    if process.returncode != 0:
        raise _failed(audio_format, f"exit {process.returncode}: {stderr.decode(errors='replace').strip()}")


async def _feed(pcm: AsyncIterator[bytes], process: asyncio.subprocess.Process) -> None:
    stdin = process.stdin
    assert stdin is not None
    try:
        async for chunk in pcm:
            stdin.write(chunk)
            await stdin.drain()
    finally:
        stdin.close()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await stdin.wait_closed()
        if hasattr(pcm, "aclose"):
            await pcm.aclose()


def _failed(audio_format: AudioFormat, detail: str) -> BackendFailed:
    log.warning("openai_api.encode_failed", format=str(audio_format), detail=detail[:300])
    return BackendFailed(f"The audio could not be encoded as {audio_format}; try another format.",
                         code="encode_failed", detail=detail[:300])
