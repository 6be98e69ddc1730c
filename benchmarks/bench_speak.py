"""Speech in a voice channel with the local backend: how soon the first audio frame reaches the voice connection
after `/speak`, and how long a 5,000-character text takes with its sentences generated side by side (the
product) against one after another.

The product's own path runs, in-process, on one loaded engine: `SpeechService.speak` (checks, admission, the
speaker's last clip) -> `commands.long_text.stream_text` -> `LocalBackend.clone_stream` -> `Engine.clone_stream`
(the continuous batch) -> the player's `Utterance.feed` -> `StreamedPcm` (soxr, 20 ms frames of 48 kHz stereo).
A reader thread stands in for discord.py's `AudioPlayer`: it reads a frame every 20 ms, as the real player
does before Opus-encoding it, so "first audio" is the moment the first speech frame is handed over, and an
underrun is a frame of silence handed over after speech began (Discord's network is excluded; so is the
voice connection's own start, which happens once per channel, not per command).

Measured:
- first audio: `/speak` of a short text (warm engine, voice prompt cached after the first call), p50/p95/max
  over `--repeats`; the worst underrun (longest run of silence after the first speech, ms; vllm-omni's
  streaming metric, 100 ms audible-gap budget) and the underrun frames;
- long text (`--long-chars`, 5,000 by default, split into sentence pieces): whole clip with the pieces at once
  (`clone_text`, what /clone and /say do) against the same pieces one after another, and streamed
  (`stream_text`, what /speak plays): first audio and total.

Random weights never end a clip by themselves; as in bench_load, EOS is disabled and every text generates the
frames real speech of its length takes (`--frames-per-char`, 0.85: ~15 characters a second), times
`--frame-scale` (smoke runs shorten every clip).

    python3 benchmarks/bench_speak.py --checkpoint /tmp/voicebot-ckpt --preset 1.7b --out runs/speak/h200.json
    python3 benchmarks/bench_speak.py --preset tiny --device cpu --repeats 2 --long-chars 600 --frame-scale 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.audio import to_wav
from backend.clients.local import LocalBackend
from backend.engine import Engine
from backend.schema import SAMPLE_RATE, CloneRequest
from backend.settings import BackendSettings
from bot.discord.playback.pcm_source import FRAME_MS, SILENCE, StreamedPcm
from bot.discord.playback.player import Utterance
from commands.clone import CloneService
from commands.long_text import clone_text, pieces_of, stream_text
from commands.settings import CommandSettings
from commands.speech import SpeechService
from commands.storage.voices import Member

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling modules, however this file is loaded
from bench_common import bench_engine, engine_parser, log  # noqa: E402
from load_costs import capture_shapes  # noqa: E402

SPEAKER = Member("discord", "bench", "1")
SHORT_TEXT = "Hello everyone, this is the bot speaking in your voice channel."
REF_TEXT = "This is the reference voice."
SENTENCES = (
    "The quick brown fox jumps over the lazy dog while the band plays on.",
    "Everyone in the square stops to listen to the music drifting through the warm evening air.",
    "A child laughs, a bicycle bell rings, and somewhere a door closes.",
    "Later, when the lights come on, the musicians pack up and the crowd drifts home.",
    "Nobody remembers exactly when the song ended, only that it was good.",
)


def long_text(chars: int) -> str:
    """Sentences in a varied order up to `chars` characters."""
    rng = np.random.default_rng(0)
    text = ""
    while True:
        sentence = SENTENCES[int(rng.integers(len(SENTENCES)))]
        if len(text) + len(sentence) + 1 > chars:
            return text
        text = f"{text} {sentence}".strip()


class PacedReader:
    """discord.py's `AudioPlayer` without the network: `read()` every 20 ms (catching up when late, as it does),
    on its own thread, until the source ends."""

    def __init__(self, source: StreamedPcm) -> None:
        self.source = source
        self.longest_gap = 0  # frames of silence in a row after the first speech
        self.done = threading.Event()
        threading.Thread(target=self._run, name="paced-reader", daemon=True).start()

    def _run(self) -> None:
        start, loops, gap = time.perf_counter(), 0, 0
        while frame := self.source.read():
            loops += 1
            if self.source.first_audio_at is not None:
                gap = gap + 1 if frame == SILENCE else 0
                self.longest_gap = max(self.longest_gap, gap)
            time.sleep(max(0.0, start + loops * FRAME_MS / 1000 - time.perf_counter()))
        self.done.set()


async def speak_once(speech: SpeechService, text: str) -> dict[str, float]:
    """One `/speak` to the voice connection: first audio (ms after the command), worst gap, underruns."""
    started = time.perf_counter()
    spoken = await speech.speak(SPEAKER, text, None, "English", channel_id="bench", is_admin=True)
    utterance = Utterance(spoken, None, StreamedPcm())  # type: ignore[arg-type]
    reader = PacedReader(utterance.source)
    utterance.feeder = asyncio.get_running_loop().create_task(utterance.feed())
    await asyncio.to_thread(reader.done.wait)
    await utterance.finish("done")
    if utterance.error is not None:
        raise utterance.error
    source = utterance.source
    return {"first_audio_ms": 1000 * ((source.first_audio_at or time.perf_counter()) - started),
            "worst_underrun_ms": reader.longest_gap * FRAME_MS, "underrun_frames": source.underruns,
            "audio_s": spoken.generated_s}


async def long_text_runs(backend: LocalBackend, request: CloneRequest) -> dict[str, Any]:
    pieces = pieces_of(request)
    log(f"long text: {len(request.text)} characters in {len(pieces)} pieces")
    started = time.perf_counter()
    batched = await clone_text(backend, request)
    batched_s = time.perf_counter() - started

    started = time.perf_counter()
    sequential_audio = 0.0
    for piece in pieces:  # sentence by sentence: each waits for the one before
        sequential_audio += (await backend.clone(piece)).audio_seconds
    sequential_s = time.perf_counter() - started

    started, first, samples = time.perf_counter(), None, 0
    async for chunk in stream_text(backend, request):
        first = first or time.perf_counter()
        samples += len(chunk)
    streamed_s = time.perf_counter() - started
    return {"chars": len(request.text), "pieces": len(pieces), "audio_s": round(batched.audio_seconds, 2),
            "batched_s": round(batched_s, 3), "sequential_s": round(sequential_s, 3),
            "sequential_audio_s": round(sequential_audio, 2), "speedup": round(sequential_s / batched_s, 2),
            "stream_first_audio_ms": round(1000 * ((first or started) - started), 1),
            "stream_total_s": round(streamed_s, 3), "stream_audio_s": round(samples / SAMPLE_RATE, 2)}


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else 0.0


def engine_for(args: argparse.Namespace) -> Engine:
    cuda = args.device.startswith("cuda")
    engine = bench_engine(args, "speak-bench", fast_capture=args.capture if cuda else "lazy", base_frames=8,
                          frames_per_char=args.frames_per_char * args.frame_scale)
    log(f"loading the engine (fast decoder, capture {engine.config.fast_capture})")
    engine.load()
    if cuda and args.capture == "lazy":  # batch 1 compiled at load; every other bucket as an uncompiled graph
        log(f"captured every bucket uncompiled in {capture_shapes(engine, [256, 512, 768, 1024], compiled=False):.1f} s")
    engine.tts.model.config.talker_config.codec_eos_token_id = 10**6  # fixed lengths: EOS never sampled
    return engine


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    cuda = args.device.startswith("cuda")
    engine = engine_for(args)
    settings = CommandSettings(_env_file=None, data_dir=args.out.parent / "speak-bench-data",  # type: ignore[call-arg]
                               cooldown_s=0.0, job_timeout_s=3600.0)
    backend = LocalBackend(BackendSettings(_env_file=None, timeout_s=3600.0), engine=engine)  # type: ignore[call-arg]
    service = CloneService(backend, settings)
    speech = SpeechService(service)
    clip = to_wav((0.1 * np.random.default_rng(0).standard_normal(SAMPLE_RATE * 5)).astype(np.float32),
                  SAMPLE_RATE)
    service.recent_clips.remember(SPEAKER.key, clip, REF_TEXT)
    result: dict[str, Any] = dict(
        card=torch.cuda.get_device_name() if cuda else "cpu",
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"), command=" ".join(sys.argv),
        preset=args.preset, frame_scale=args.frame_scale, repeats=args.repeats)
    try:
        cold = await speak_once(speech, SHORT_TEXT)  # the first call: voice prompt, lazily captured shapes
        log(f"cold /speak: first audio {cold['first_audio_ms']:.0f} ms")
        runs = [await speak_once(speech, SHORT_TEXT) for _ in range(args.repeats)]
        firsts = [run["first_audio_ms"] for run in runs]
        result["speak"] = {
            "text_chars": len(SHORT_TEXT), "cold_first_audio_ms": round(cold["first_audio_ms"], 1),
            "first_audio_ms": [round(value, 1) for value in firsts], "first_audio_p50_ms": percentile(firsts, 50),
            "first_audio_p95_ms": percentile(firsts, 95), "first_audio_max_ms": round(max(firsts), 1),
            "worst_underrun_ms": max(run["worst_underrun_ms"] for run in runs),
            "underrun_frames": sum(run["underrun_frames"] for run in runs),
            "audio_s": round(runs[-1]["audio_s"], 2), "goal_ms": 300}
        log(f"/speak first audio p50 {result['speak']['first_audio_p50_ms']} ms, "
            f"max {result['speak']['first_audio_max_ms']} ms, worst underrun {result['speak']['worst_underrun_ms']} ms")
        args.out.write_text(json.dumps(result, indent=2))  # kept if a time-limited run ends in the long text
        request = CloneRequest(reference=clip, ref_text=REF_TEXT, text=long_text(args.long_chars), language="English")
        result["long_text"] = await long_text_runs(backend, request)
        log(f"long text: batched {result['long_text']['batched_s']} s, sequential "
            f"{result['long_text']['sequential_s']} s, streamed first audio "
            f"{result['long_text']['stream_first_audio_ms']} ms")
    finally:
        await service.queue.flush(timeout=5)
        await backend.aclose()
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(measure(args))
    args.out.write_text(json.dumps(result, indent=2))
    log(f"wrote {args.out}")
    return result


def parser() -> argparse.ArgumentParser:
    options = engine_parser(__doc__.splitlines()[0])
    options.add_argument("--repeats", type=int, default=8,
                         help="warm /speak calls measured (each plays its ~5 s in real time)")
    options.add_argument("--long-chars", type=int, default=5000, help="length of the long text")
    options.add_argument("--frames-per-char", type=float, default=0.85)
    options.add_argument("--frame-scale", type=float, default=1.0, help="multiplies every clip's length")
    options.add_argument("--capture", default="all", choices=("lazy", "background", "all"),
                         help="when the fast engine captures its CUDA graphs (cuda only); lazy: batch 1 compiled, "
                         "every other batch bucket captured uncompiled before measuring (no compile mid-run)")
    options.add_argument("--compile-cache", type=Path, default=None, help="torch.compile artifacts to reuse")
    options.add_argument("--out", type=Path, default=Path("speak.json"))
    return options


if __name__ == "__main__":
    run(parser().parse_args())
