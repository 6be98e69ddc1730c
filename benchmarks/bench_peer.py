"""GPU timing of the peer, faster-qwen3-tts 0.5.4, on the checkpoint and voice prompt that bench_gpu.py uses.

Run on the device machine in its own process, next to `bench_gpu.py` in the same call (see benchmarks/RESULTS.md
for the exact command). faster-qwen3-tts needs `qwen-tts-hf` 0.1.1.post1 (a build of the same `qwen_tts` package
for transformers 5), so this process must NOT see the carried transformers 4.57.3 / qwen-tts 0.1.1 that
bench_gpu.py runs on: put faster-qwen3-tts, qwen-tts-hf and their small dependencies in a target dir of their own
and use the image's transformers 5.

The checkpoint must exist already (bench_gpu.py, or `build_random_checkpoint`, writes it under the stock package).
Same setup as bench_gpu.py: ICL voice prompt from the same synthetic 3 s clip, same text, bf16, `frames` frames per
call, end to end through `generate_voice_clone` (prompt, codes, waveform), warm-up first (it captures the peer's
CUDA graphs), median of repeats, `torch.cuda.synchronize()` around each timed call, peak memory over the timed
repeats. The peer gets a fixed length through `min_new_tokens = max_new_tokens = frames` (its sampler breaks on the
EOS-id trick that bench_gpu.py uses). Streaming: time to the first chunk of `generate_voice_clone_streaming`, for
each chunk size asked for. Writes a JSON of the shape bench_gpu.py writes, which `benchmarks/report.py` reads.
"""

from __future__ import annotations

import json
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from bench_common import FRAME_S, REF_TEXT, TEXT, base_parser, log, peak_gb, sync, versions

SAMPLES_PER_FRAME = 1920
PEER = "faster-qwen3-tts"


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    sync()
    started = time.perf_counter()
    result = fn()
    sync()
    return time.perf_counter() - started, result


def patch_rope_theta() -> str:
    """qwen-tts-hf 0.1.1.post1 registers a "default" RoPE initialiser that reads `config.rope_theta`; under
    transformers 5.17 MimiConfig keeps it only in `config.rope_parameters`, so loading the speech tokenizer fails
    with "'MimiConfig' object has no attribute 'rope_theta'". Re-register the initialiser with a fallback to
    `rope_parameters['rope_theta']` (same formula otherwise). A runtime patch; the package is not forked."""
    import qwen_tts._transformers_compat as compat
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    original = compat._default_rope_parameters

    def default_rope_parameters(config, device=None, seq_len=None, layer_type=None):
        if hasattr(config, "rope_theta"):  # transformers' configs raise AttributeError for a missing key
            return original(config, device, seq_len, layer_type)
        params = config.rope_parameters
        if layer_type is not None and isinstance(params.get(layer_type), dict):
            params = params[layer_type]
        base = params["rope_theta"]
        factor = params.get("partial_rotary_factor", getattr(config, "partial_rotary_factor", 1.0))
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        dim = int(head_dim * factor)
        exponents = torch.arange(0, dim, 2, dtype=torch.int64).to(device=device, dtype=torch.float) / dim
        return 1.0 / (base ** exponents), 1.0

    ROPE_INIT_FUNCTIONS["default"] = default_rope_parameters
    compat._default_rope_parameters = default_rope_parameters
    return "qwen_tts._transformers_compat._default_rope_parameters: rope_theta from config.rope_parameters"


class StepTimings:
    """Wraps the peer's decode loops to keep their own timing dicts (prefill ms, decode ms per step)."""

    def __init__(self) -> None:
        from faster_qwen3_tts import generate

        self.last: dict = {}
        original = generate.fast_generate

        def fast_generate(*args, **kwargs):
            codes, timing = original(*args, **kwargs)
            self.last = dict(timing)
            return codes, timing

        generate.fast_generate = fast_generate


def load_peer(path: Path, device: str, dtype: torch.dtype, max_seq_len: int):
    from faster_qwen3_tts import FasterQwen3TTS

    return FasterQwen3TTS.from_pretrained(str(path), device=device, dtype=dtype, attn_implementation="sdpa",
                                          max_seq_len=max_seq_len)


def measure(peer, prompt, steps: StepTimings, *, frames: int, repeats: int) -> dict:
    """Median wall time of `repeats` fixed-length voice-clone calls after one warm-up (which captures the graphs)."""
    gen = dict(max_new_tokens=frames, min_new_tokens=frames)

    def call():
        return peer.generate_voice_clone(text=TEXT, language="english", voice_clone_prompt=prompt, **gen)

    warmup_s, _ = timed(call)
    log(f"{PEER}: warm-up call (graph capture + generate) {warmup_s:.1f} s")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    times, decode = [], []
    samples = 0
    for _ in range(repeats):
        wall, (wavs, _rate) = timed(call)
        times.append(wall)
        decode.append(steps.last)
        samples = int(wavs[0].shape[0])
    wall = statistics.median(times)
    got = decode[-1].get("steps")
    if got != frames:
        raise RuntimeError(f"{PEER} generated {got} frames, not {frames}")
    row = dict(variant=f"{PEER} b1", streams=1, frames=frames, wall_s=wall, times_s=times,
               ms_per_frame=wall / frames * 1000, xrt_per_stream=frames * FRAME_S / wall,
               aggregate_audio_s_per_s=frames * FRAME_S / wall, peak_gb=peak_gb(), warmup_s=warmup_s,
               audio_samples=samples, audio_s=samples / 24000,
               peer_prefill_ms=[d.get("prefill_ms") for d in decode],
               peer_decode_ms_per_step=[d.get("ms_per_step") for d in decode])
    log(f"{row['variant']}: {row['ms_per_frame']:.2f} ms/frame, {row['xrt_per_stream']:.2f}x, peak "
        f"{row['peak_gb']:.2f} GB ({times}); its own loop timing: prefill {row['peer_prefill_ms']} ms, decode "
        f"{row['peer_decode_ms_per_step']} ms/step; audio {row['audio_s']:.2f} s")
    return row


def first_audio(peer, prompt, *, frames: int, repeats: int, chunk_size: int) -> dict:
    """Time from the call to the first streamed chunk, and to the last, for one chunk size."""
    gen = dict(max_new_tokens=frames, min_new_tokens=frames, chunk_size=chunk_size)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    firsts, totals = [], []
    samples = 0
    for attempt in range(repeats + 1):
        sync()
        started = time.perf_counter()
        first, samples = None, 0
        for chunk, _rate, _timing in peer.generate_voice_clone_streaming(
                text=TEXT, language="english", voice_clone_prompt=prompt, **gen):
            first = first if first is not None else time.perf_counter() - started
            samples += int(chunk.shape[0])
        sync()
        if attempt:  # the first pass is the warm-up
            firsts.append(first)
            totals.append(time.perf_counter() - started)
    row = dict(variant=f"{PEER} stream (chunk {chunk_size})", streams=1, chunk_frames=chunk_size,
               first_audio_ms=statistics.median(firsts) * 1000, first_audio_all_ms=[f * 1000 for f in firsts],
               stream_total_s=statistics.median(totals), stream_total_all_s=totals, audio_s=samples / 24000,
               peak_gb=peak_gb())
    log(f"{row['variant']}: first audio {row['first_audio_ms']:.1f} ms ({row['first_audio_all_ms']}), total "
        f"{row['stream_total_s']:.2f} s, audio {row['audio_s']:.2f} s")
    return row


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--stream-chunks", default="12,2",
                        help="chunk sizes (frames) to time first audio for; 12 is the peer's default ('' for none)")
    parser.add_argument("--max-seq-len", type=int, default=2048, help="the peer's static cache length (its default)")
    parser.add_argument("--out", type=Path, default=Path("bench-peer.json"))
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--call", default="", help="a label shared with the bench_gpu.py run of the same call")
    args = parser.parse_args()

    path = args.checkpoint / args.preset
    if not (path / "config.json").is_file():
        sys.exit(f"no checkpoint at {path}: run bench_gpu.py (it builds one) or build_random_checkpoint first")
    patch = patch_rope_theta()
    import transformers

    log(f"transformers {transformers.__version__}, patched {patch}")
    steps = StepTimings()
    dtype = getattr(torch, args.dtype)
    result = dict(card=torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor(),
                  host=socket.gethostname(), call=args.call,
                  date=datetime.now(UTC).isoformat(timespec="seconds"), python=platform.python_version(),
                  versions=versions("torch", "transformers", "faster-qwen3-tts", "qwen-tts-hf", "tokenizers",
                                    "huggingface-hub", "accelerate", "triton"),
                  command=" ".join(sys.argv), preset=args.preset, dtype=args.dtype,
                  frames=args.frames, repeats=args.repeats, runtime_patches=[patch], rows=[])
    rows = result["rows"]

    def save() -> None:
        args.out.write_text(json.dumps(result, indent=2))

    log(f"loading {path} with {PEER}")
    load_s, peer = timed(lambda: load_peer(path, args.device, dtype, args.max_seq_len))
    result["load_s"] = load_s
    rng = np.random.default_rng(0)  # the same clip as bench_gpu.py
    reference = (0.1 * rng.standard_normal(24000 * 3).astype(np.float32), 24000)
    prompt = peer.model.create_voice_clone_prompt(ref_audio=reference, ref_text=REF_TEXT)
    result["ref_code_frames"] = int(prompt[0].ref_code.shape[0])
    log(f"loaded in {load_s:.1f} s; voice prompt of {result['ref_code_frames']} frames (ICL)")
    save()
    try:
        rows.append(measure(peer, prompt, steps, frames=args.frames, repeats=args.repeats))
    except Exception as error:
        rows.append(dict(variant=f"{PEER} b1", error=repr(error)))
        log(f"{PEER} b1 failed: {error!r}")
    save()
    for chunk in [int(c) for c in args.stream_chunks.split(",") if c]:
        try:
            rows.append(first_audio(peer, prompt, frames=args.frames, repeats=args.repeats, chunk_size=chunk))
        except Exception as error:
            rows.append(dict(variant=f"{PEER} stream (chunk {chunk})", error=repr(error)))
            log(f"{PEER} stream (chunk {chunk}) failed: {error!r}")
        save()
    log("done")


if __name__ == "__main__":
    main()
