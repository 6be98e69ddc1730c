"""Side-by-side GPU timing of stock qwen-tts and the fast engine on a random-weight checkpoint.

Run on the device machine (see benchmarks/RESULTS.md for the exact command). Speed per frame does not depend
on weight values, so a random checkpoint with the published shapes stands in for the real one. Every variant
generates a fixed number of frames (EOS suppressed: `codec_eos_token_id = 10**6`, `max_new_tokens = frames + 1`),
end to end through `generate_voice_clone` (codes and waveform), bf16, warm-up first, median of repeats, with
`torch.cuda.synchronize()` around each timed call. Writes one JSON file; `benchmarks/report.py` turns it into
RESULTS.md and a plot.
"""

from __future__ import annotations

import contextlib
import json
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.engine.checkpoint import build_random_checkpoint, is_checkpoint  # noqa: E402
from backend.engine.fast import FastTTS  # noqa: E402
from bench_common import FRAME_S, REF_TEXT, TEXT, base_parser, log, peak_gb, sync, versions  # noqa: E402



def timed(fn: Callable[[], object]) -> float:
    sync()
    started = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - started


def set_attention(model: torch.nn.Module, implementation: str) -> None:
    """Switch talker and code predictor between sdpa and eager on the loaded model (same weights)."""
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            config._attn_implementation = implementation


def measure(name: str, fn: Callable[[], object], *, frames: int, streams: int, repeats: int,
            warmup: Callable[[], object] | None = None) -> dict:
    """Median wall time of `repeats` calls after one warm-up (`fn` itself unless given), plus peak memory."""
    timed(warmup or fn)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    times = [timed(fn) for _ in range(repeats)]
    wall = statistics.median(times)
    row = dict(variant=name, streams=streams, frames=frames, wall_s=wall, times_s=times,
               ms_per_frame=wall / frames * 1000, xrt_per_stream=frames * FRAME_S / wall,
               aggregate_audio_s_per_s=streams * frames * FRAME_S / wall,
               peak_gb=peak_gb())
    log(f"{name}: {row['ms_per_frame']:.2f} ms/frame, {row['xrt_per_stream']:.2f}x per stream, "
        f"{row['aggregate_audio_s_per_s']:.1f} audio-s/s, peak {row['peak_gb']:.2f} GB ({times})")
    return row


def first_audio(fast: FastTTS, prompt, repeats: int, **gen) -> dict:
    """Time from the call to the first streamed chunk, and to the last."""
    firsts, totals = [], []
    for attempt in range(repeats + 1):
        sync()
        started = time.perf_counter()
        first, samples = None, 0
        for chunk in fast.stream_voice_clone(TEXT, "english", prompt, **gen):
            first = first if first is not None else time.perf_counter() - started
            samples += chunk.shape[0]
        if attempt:  # the first pass is the warm-up
            firsts.append(first)
            totals.append(time.perf_counter() - started)
    inputs_s = statistics.median(timed(lambda: fast.talker_inputs(TEXT, "english", [prompt], **gen))
                                 for _ in range(repeats))
    window = torch.zeros(25 + 2, 16, dtype=torch.long, device=fast.decoder.device)
    decode_s = statistics.median(timed(lambda: fast.tts.model.speech_tokenizer.decode([{"audio_codes": window}]))
                                 for _ in range(repeats))
    row = dict(variant="fast stream", streams=1, first_audio_ms=statistics.median(firsts) * 1000,
               first_audio_all_ms=[f * 1000 for f in firsts], stream_total_s=statistics.median(totals),
               audio_s=samples / 24000, prompt_build_ms=inputs_s * 1000, first_chunk_decode_ms=decode_s * 1000)
    log(f"fast stream: first audio {row['first_audio_ms']:.1f} ms ({row['first_audio_all_ms']}), total "
        f"{row['stream_total_s']:.2f} s; of it prompt build {row['prompt_build_ms']:.1f} ms, decode of the first "
        f"27-frame window {row['first_chunk_decode_ms']:.1f} ms")
    return row


def parity(tts, fast: FastTTS, prompt, frames: int) -> dict:
    """Greedy codes: stock generate vs fast (graphs) vs fast eager loop, on the full-size bf16 model."""
    gen = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=frames + 1)
    from backend.engine.fast.decoder import FastDecoder

    graphs = fast.generate_codes(TEXT, "english", [prompt], **gen)[0]
    eager_decoder, fast.decoder = fast.decoder, FastDecoder(tts.model, max_batch=1, max_len=512, use_graphs=False)
    try:
        eager = fast.generate_codes(TEXT, "english", [prompt], **gen)[0]
    finally:
        fast.decoder = eager_decoder
    stock_tokens, _ = tts.model.generate(**stock_generate_args(tts, prompt, gen))
    stock = stock_tokens[0]

    def agree(a: torch.Tensor, b: torch.Tensor) -> dict:
        same = (a == b).all(dim=1)
        first_diff = int((~same).int().argmax()) if not bool(same.all()) else None
        return dict(frames_equal=int(same.sum()), frames=int(same.numel()), first_diverging_frame=first_diff)

    row = dict(variant="parity", graphs_vs_eager=agree(graphs, eager), fast_vs_stock=agree(graphs, stock))
    log(f"parity: {row}")
    return row


def profile(fast: FastTTS, prompt, frames: int = 50) -> dict:
    """Kernels per frame and the GPU's busy time per frame (sum of kernel durations) over a batch-1 decode:
    busy time near the wall time means the GPU, not the host, bounds the loop."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as run_profiler

    if not torch.cuda.is_available():
        return dict(variant="profile b1", skipped="no GPU")
    gen = dict(max_new_tokens=frames + 1)
    inputs, settings = fast.talker_inputs(TEXT, "english", [prompt], **gen)
    list(fast.decoder.frames(inputs, settings))
    with run_profiler(activities=[ProfilerActivity.CUDA]) as prof:
        wall = timed(lambda: list(fast.decoder.frames(inputs, settings)))
    kernels = [e for e in prof.events() if e.device_type.name == "CUDA"]
    busy_us = sum(e.device_time for e in kernels)
    top: dict[str, float] = {}
    for event in kernels:
        top[event.name] = top.get(event.name, 0.0) + event.device_time
    row = dict(variant="profile b1", frames=frames, wall_ms_per_frame=wall / frames * 1000,
               kernels_per_frame=len(kernels) / frames, gpu_busy_ms_per_frame=busy_us / frames / 1000,
               top_kernels_ms_per_frame={k[:80]: v / frames / 1000 for k, v in
                                         sorted(top.items(), key=lambda kv: -kv[1])[:12]})
    log(f"profile: {row}")
    return row


def stock_generate_args(tts, prompt, gen: dict) -> dict:
    """The arguments `generate_voice_clone` passes to `model.generate`, for a codes-only stock run."""
    return dict(input_ids=tts._tokenize_texts([tts._build_assistant_text(TEXT)]),
                ref_ids=[tts._tokenize_texts([tts._build_ref_text(prompt.ref_text)])[0]],
                voice_clone_prompt=tts._prompt_items_to_voice_clone_prompt([prompt]), languages=["english"],
                non_streaming_mode=False, **tts._merge_generate_kwargs(**gen))


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,4,16")
    parser.add_argument("--stock", default="sdpa,eager,flash", help="stock variants to time ('' for none)")
    parser.add_argument("--stock-frames", type=int, default=None, help="frames for stock runs (default --frames)")
    parser.add_argument("--parity-frames", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("bench.json"))
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--no-compile", action="store_true", help="graphs of the eager loop, no torch.compile")
    parser.add_argument("--dtype", default="bfloat16", help="model dtype on the GPU (float32 for a parity run)")
    parser.add_argument("--profile", action="store_true", help="kernel count and GPU-busy time per frame, batch 1")
    parser.add_argument("--call", default="", help="a label shared with the bench_peer.py run of the same call")
    args = parser.parse_args()

    from qwen_tts import Qwen3TTSModel

    device = args.device
    path = args.checkpoint / args.preset
    if not is_checkpoint(path):
        log(f"building the {args.preset} checkpoint on {device}")
        build_random_checkpoint(args.preset, path, device=device.split(":")[0])
    log("loading")
    dtype = getattr(torch, args.dtype) if device.startswith("cuda") else torch.float32
    tts = Qwen3TTSModel.from_pretrained(str(path), device_map=device, dtype=dtype,
                                        attn_implementation="sdpa")
    tts.model.config.talker_config.codec_eos_token_id = 10**6
    rng = np.random.default_rng(0)
    reference = (0.1 * rng.standard_normal(24000 * 3).astype(np.float32), 24000)
    prompt = tts.create_voice_clone_prompt(ref_audio=reference, ref_text=REF_TEXT)[0]
    batches = [int(b) for b in args.batches.split(",") if b]
    result = dict(card=torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor(),
                  host=socket.gethostname(), call=args.call,
                  date=datetime.now(timezone.utc).isoformat(timespec="seconds"), python=platform.python_version(),
                  versions=versions("torch", "transformers", "qwen-tts", "tokenizers", "triton"),
                  command=" ".join(sys.argv),
                  preset=args.preset, dtype=str(dtype).removeprefix("torch."), frames=args.frames, repeats=args.repeats,
                  rows=[])
    rows = result["rows"]

    def save() -> None:
        args.out.write_text(json.dumps(result, indent=2))

    fast = FastTTS(tts, max_batch=max(batches, default=1), max_len=512, compile=False if args.no_compile else None)
    result["compiled"] = fast.decoder.layer_step.compiled
    started = time.perf_counter()
    for rows in tuple(batches) or (1,):  # every batch bucket's graph at the first cache length, before timing
        fast.decoder.capture(fast.decoder.shape(rows, 1))
    result["graph_capture_s"] = time.perf_counter() - started
    log(f"captured graphs for {batches} in {result['graph_capture_s']:.1f} s")
    if args.parity_frames:
        rows.append(parity(tts, fast, prompt, args.parity_frames))
        save()
    gen = dict(max_new_tokens=args.frames + 1)
    if args.profile:
        rows.append(profile(fast, prompt))
        save()
    for batch in batches:
        texts = [TEXT] * batch
        rows.append(measure(f"fast b{batch}", lambda fast=fast, texts=texts: fast.generate_voice_clone(
                                texts, "english", [prompt], **gen),
                            frames=args.frames, streams=batch, repeats=args.repeats))
        save()
    rows.append(first_audio(fast, prompt, args.repeats, **gen))
    save()
    del fast
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

    stock_frames = args.stock_frames or args.frames
    stock_gen = dict(max_new_tokens=stock_frames + 1)
    short_gen = dict(max_new_tokens=11)
    for variant in [v for v in args.stock.split(",") if v]:
        set_attention(tts.model, "eager" if variant == "eager" else "sdpa")
        # "flash": PyTorch's flash kernel wherever it can run; qwen-tts passes an explicit mask on some calls
        # (flash alone fails: "No available kernel"), and those take the memory-efficient kernel.
        sdpa = torch.nn.attention.SDPBackend
        backends = [sdpa.FLASH_ATTENTION, sdpa.EFFICIENT_ATTENTION] if variant == "flash" else None

        def run(settings: dict = stock_gen) -> None:
            with torch.nn.attention.sdpa_kernel(backends) if backends else contextlib.nullcontext():
                tts.generate_voice_clone(text=TEXT, language="english", voice_clone_prompt=[prompt], **settings)

        try:  # a 10-frame warm-up: stock is slow, and one generate warms every kernel it uses
            rows.append(measure(f"stock {variant}", run, frames=stock_frames, streams=1, repeats=args.repeats,
                                warmup=lambda: run(short_gen)))
        except Exception as error:  # one broken variant must not lose the others' numbers
            rows.append(dict(variant=f"stock {variant}", error=repr(error)))
            log(f"stock {variant} failed: {error!r}")
        save()
    set_attention(tts.model, "sdpa")
    log("done")


if __name__ == "__main__":
    main()
