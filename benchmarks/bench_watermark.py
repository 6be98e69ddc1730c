"""What the watermark costs and how well it survives: `backend.watermark` on this machine's CPU (or a GPU).

1. Cost: seconds to mark (and to check) per second of audio, for clips of several lengths (median of repeats,
   after a warm-up call).
2. Detection: the share of clips the check calls watermarked, as generated (WAV) and after an Opus re-encode
   through the bundled ffmpeg (imageio-ffmpeg; libopus at 64 kbit/s, the Discord voice fallback; 32 kbit/s
   as a harsher one), for
   - speech-like clips (harmonics of a gliding pitch in syllables, like the demo's reference, each with its own
     pitch, rate and length) marked whole, and marked as a stream by `StreamMarker` in the fast engine's chunk
     schedule (2, 4, 8 then 12 frames);
   - the engine's own output: the tiny random-weight checkpoint (noise-like audio, not speech; a real
     checkpoint needs its weights and a GPU);
   - false positives: the same speech-like clips unmarked, and white and pink noise.
3. Streaming seams: how far the streamed marking departs from marking the whole clip at once, near chunk edges,
   in dB of the clip's peak, for `StreamMarker` and for chunks marked alone.

    python benchmarks/bench_watermark.py --machine "2-core AMD EPYC (shared)" --out benchmarks/runs/watermark/cpu.json
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.audio import to_wav  # noqa: E402
from backend.intake import load_audio  # noqa: E402
from backend.schema import SAMPLE_RATE  # noqa: E402
from backend.watermark import CHECK_LIMITS, THRESHOLD, StreamMarker, Watermarker  # noqa: E402

STREAM_FRAMES = [2, 4, 8]  # then 12 per chunk: the fast engine's streaming schedule
SAMPLES_PER_FRAME = 1920
CODECS = {"wav": None, "opus-64k": "64k", "opus-32k": "32k"}


def speech_like(seed: int, seconds: float) -> np.ndarray:
    """Voiced syllables: harmonics of a gliding pitch (90-260 Hz), 3-6 syllables per second, a little breath."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    base, swing, glide = rng.uniform(90, 200), rng.uniform(10, 60), rng.uniform(0.2, 1.0)
    pitch = base + swing * np.sin(2 * np.pi * glide * t + rng.uniform(0, 6.3))
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    weights = rng.uniform(0.3, 1.0, 12) / np.arange(1, 13)
    voice = sum(w * np.sin(k * phase) for k, w in enumerate(weights, start=1))
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6.3)), 0, None) ** 0.5
    breath = rng.standard_normal(t.size) * 0.02
    audio = voice * syllables + breath
    return (rng.uniform(0.15, 0.5) * audio / np.abs(audio).max()).astype(np.float32)


def pink_noise(seed: int, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(int(seconds * SAMPLE_RATE)))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    audio = np.fft.irfft(spectrum)
    return (0.3 * audio / np.abs(audio).max()).astype(np.float32)


def white_noise(seed: int, seconds: float) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE)) * 0.1).astype(np.float32)


def reencode(samples: np.ndarray, bitrate: str | None, ffmpeg: str, scratch: Path) -> tuple[np.ndarray, int]:
    """The clip as a platform would hand it back: a 16-bit WAV, or that WAV through libopus at `bitrate`."""
    wav = to_wav(samples, SAMPLE_RATE)
    if bitrate is None:
        clip = load_audio(wav, CHECK_LIMITS)
        return clip.samples, clip.sample_rate
    source, target = scratch / "in.wav", scratch / "out.ogg"
    source.write_bytes(wav)
    subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-c:a", "libopus",
                    "-b:a", bitrate, str(target)], check=True, timeout=120)
    clip = load_audio(target.read_bytes(), CHECK_LIMITS)
    return clip.samples, clip.sample_rate


def stream_chunks(samples: np.ndarray) -> Iterator[np.ndarray]:
    """`samples` cut as the fast engine streams: 2, 4, 8, then 12 frames per chunk."""
    start, sizes = 0, iter(STREAM_FRAMES)
    while start < samples.size:
        end = start + next(sizes, 12) * SAMPLES_PER_FRAME
        yield samples[start:end]
        start = end


def stream_marked(marker: Watermarker, samples: np.ndarray) -> np.ndarray:
    stream = StreamMarker(marker)
    parts = [stream.push(chunk) for chunk in stream_chunks(samples)]
    return np.concatenate([*parts, stream.finish()])


def chunks_marked_alone(marker: Watermarker, samples: np.ndarray) -> np.ndarray:
    return np.concatenate([marker.mark(chunk) for chunk in stream_chunks(samples)])


def timed(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, fastest) seconds after a warm-up call: on a shared machine the fastest is the steadier figure."""
    call()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), min(runs)


def cost(marker: Watermarker, lengths: list[float], repeats: int) -> list[dict]:
    rows = []
    for seconds in lengths:
        audio = speech_like(1000 + int(seconds), seconds)
        marked = marker.mark(audio)
        row: dict = {"seconds": seconds}
        for name, call in (("mark", lambda audio=audio: marker.mark(audio)),
                           ("check", lambda marked=marked: marker.confidence(marked, SAMPLE_RATE)),
                           ("stream_mark", lambda audio=audio: stream_marked(marker, audio))):
            median, fastest = timed(call, repeats)
            row |= {f"{name}_s": median, f"{name}_s_fastest": fastest, f"{name}_s_per_audio_s": median / seconds,
                    f"{name}_s_per_audio_s_fastest": fastest / seconds}
        rows.append(row)
        print(f"cost {seconds:5.1f} s: mark {row['mark_s']:.3f} s, check {row['check_s']:.3f} s, "
              f"stream {row['stream_mark_s']:.3f} s (median)", flush=True)
    return rows


def engine_clips(count: int, checkpoint: Path) -> list[np.ndarray]:
    """The tiny checkpoint's output through the real engine (so marked exactly as users' clips are)."""
    import soundfile as sf

    from backend.engine import Engine, EngineConfig
    from bot.demo import demo_reference

    engine = Engine(EngineConfig(model=str(checkpoint), variant="bench", device="cpu"))
    texts = [f"Clip number {index}: the watermark benchmark speaks a sentence of some length." for index in
             range(count)]
    from backend.schema import CloneRequest

    results = engine.clone_batch([CloneRequest(reference=demo_reference(), text=text, seed=None,
                                               max_new_tokens=60 + 10 * index) for index, text in enumerate(texts)])
    return [sf.read(io.BytesIO(result.audio), dtype="float32")[0] for result in results]


def scores(marker: Watermarker, clips: list[np.ndarray], ffmpeg: str, scratch: Path) -> dict[str, list[float]]:
    return {codec: [marker.confidence(*reencode(clip, bitrate, ffmpeg, scratch)) for clip in clips]
            for codec, bitrate in CODECS.items()}


def departure_db(marked: np.ndarray, whole: np.ndarray, samples: np.ndarray) -> dict[str, float]:
    """How far a streamed marking departs from marking the whole clip at once, in dB of the clip's peak: the
    largest difference within 200 samples of a chunk edge (a click there is audible), and anywhere."""
    edges = np.cumsum([chunk.size for chunk in stream_chunks(samples)])[:-1]
    error = np.abs(marked - whole)
    near_edges = max(float(error[max(0, edge - 200): edge + 200].max()) for edge in edges)
    peak = float(np.abs(whole).max())
    return {"near_chunk_edges": 20 * np.log10(max(near_edges, 1e-12) / peak),
            "anywhere": 20 * np.log10(max(float(error.max()), 1e-12) / peak)}


def summary(values: list[float]) -> dict:
    """How many the check calls watermarked (the detection rate of a marked set, the false-positive rate of an
    unmarked one), and the spread of the scores."""
    return {"n": len(values), "called_watermarked": sum(value >= THRESHOLD for value in values) / len(values),
            "min": min(values), "median": statistics.median(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machine", required=True, help="What ran it, for the results table")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clips", type=int, default=20, help="Speech-like clips per set (0: the cost only)")
    parser.add_argument("--engine-clips", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lengths", default="2,5,10,30")
    parser.add_argument("--checkpoint", type=Path, default=ROOT / ".pytest_cache" / "voicebot" / "tiny")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import imageio_ffmpeg
    import torch

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    marker = Watermarker(args.device)
    started = time.perf_counter()
    marker.load()
    load_s = time.perf_counter() - started
    report: dict = {"machine": args.machine, "device": args.device, "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "load_s": load_s,
                    "command": " ".join(sys.argv)}
    report["cost"] = cost(marker, [float(x) for x in args.lengths.split(",")], args.repeats)

    if args.clips == 0:
        write(report, args.out)
        return
    speech = [speech_like(seed, float(np.random.default_rng(seed).uniform(3, 10))) for seed in range(args.clips)]
    noise = [white_noise(seed, 5.0) for seed in range(args.clips // 2)] + \
            [pink_noise(seed, 5.0) for seed in range(args.clips // 2)]
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        whole = [marker.mark(clip) for clip in speech]
        streamed = [stream_marked(marker, clip) for clip in speech]
        alone = [chunks_marked_alone(marker, clip) for clip in speech]
        sets = {"speech-like, marked whole": whole, "speech-like, marked as a stream": streamed,
                "speech-like, unmarked": speech, "white and pink noise, unmarked": noise}
        if args.engine_clips and args.checkpoint.exists():
            sets["tiny engine output (noise-like), marked"] = engine_clips(args.engine_clips, args.checkpoint)
        report["detection"] = {}
        for name, clips in sets.items():
            found = scores(marker, clips, ffmpeg, scratch)
            report["detection"][name] = {codec: summary(values) for codec, values in found.items()}
            rates = {codec: round(row["called_watermarked"], 3) for codec, row in report["detection"][name].items()}
            print(name, rates, flush=True)
    report["departure_db"] = {
        name: {where: max(departure_db(m, w, c)[where] for m, w, c in zip(marked, whole, speech, strict=True))
               for where in ("near_chunk_edges", "anywhere")}
        for name, marked in (("StreamMarker", streamed), ("chunks marked alone", alone))}
    print("departure from whole-clip marking (worst, dB of peak)", report["departure_db"], flush=True)
    write(report, args.out)


def write(report: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
