"""The costs a continuous-batching scheduler works with, for `bench_load.py`: every batch bucket captured before
serving, the unit costs measured alone (`micro`), and where the decode loop's time went during a run
(`loop_profile`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from backend.engine import Engine
from backend.engine.fast.continuous import LoopStats
from backend.engine.fast.tts import SAMPLES_PER_FRAME
from backend.schema import CloneRequest


def loop_profile(before: LoopStats, after: LoopStats, wall_s: float) -> dict[str, float]:
    """Where the decode loop's time went during one run: shares of the wall time, and rows per step."""
    steps = after.steps - before.steps
    return dict(steps=steps, rows_per_step=round((after.frames - before.frames) / steps, 2) if steps else 0.0,
                joins=after.joins - before.joins,
                join_share=round((after.join_s - before.join_s) / wall_s, 3),
                step_share=round((after.step_s - before.step_s) / wall_s, 3),
                look_share=round((after.look_s - before.look_s) / wall_s, 3),
                ms_per_step=round((after.step_s - before.step_s + after.look_s - before.look_s) / steps * 1000, 2)
                if steps else 0.0)


def capture_shapes(engine: Engine, lengths: list[int], compiled: bool) -> float:
    """Every batch bucket at these cache lengths, before serving; seconds taken."""
    decoder = engine._fast.decoder
    started = time.perf_counter()
    for rows in decoder.batch_buckets:
        for length in lengths:
            shape = decoder.shape(rows, length)
            (decoder.capture if compiled else decoder.capture_eager)(shape)
    return time.perf_counter() - started


def _timed(work: Callable[[], object], repeats: int = 5) -> float:
    """Median milliseconds of `work` (CUDA synchronized around each call)."""
    cuda = torch.cuda.is_available()
    times = []
    for _ in range(repeats + 1):
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        work()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return round(float(np.median(times[1:])) * 1000, 2)


def micro(engine: Engine, request: CloneRequest, length: int) -> dict[str, Any]:
    """The costs a scheduler works with, each alone: a frame of each batch bucket at cache `length` (replaying
    its graph), preparing and staging `request`'s prompt, decoding and watermarking a first and a steady stream
    chunk, decoding a whole 160-frame clip (the product's speech decoder; a chunk also by stock's). Run before
    serving (it replays graphs on the idle loop's buffers)."""
    from backend.watermark import StreamMarker

    fast, decoder = engine._fast, engine._fast.decoder
    costs: dict[str, Any] = {"frame_ms": {}}
    with decoder._generating, torch.inference_mode():
        for rows in decoder.batch_buckets:
            _, advance = decoder._plan(*decoder.shape(rows, length))
            costs["frame_ms"][str(rows)] = _timed(lambda advance=advance: [advance() for _ in range(10)]) / 10
        buffers = decoder.buffers  # as the loop leaves idle slots: harmless
        buffers.finished[:] = True
        buffers.step[:] = 0
        buffers.position[:] = 0
    item = engine._prepare(*engine._check(request))
    inputs, _ = fast.talker_inputs([item.text], ["english"], [item.prompt], max_new_tokens=160)
    costs["talker_inputs_ms"] = _timed(lambda: fast.talker_inputs([item.text], ["english"], [item.prompt],
                                                                  max_new_tokens=160))
    costs["stage_ms"] = _timed(lambda: decoder.stage(inputs))
    costs["stock_prefill_ms"] = _timed(lambda: decoder.stager._forward(inputs))
    stock_decode = engine.tts.model.speech_tokenizer.decode
    for frames in (2, 12):
        window = torch.zeros(25 + frames, 16, dtype=torch.long)  # as a stream's chunk reaches the decoder
        costs[f"chunk_decode_{frames}_ms"] = _timed(lambda window=window: fast.speech.decode(window))
        costs[f"stock_chunk_decode_{frames}_ms"] = _timed(
            lambda window=window: stock_decode([{"audio_codes": window.to(decoder.device)}]))
        audio = np.zeros(frames * SAMPLES_PER_FRAME, dtype=np.float32)
        marker = StreamMarker(engine._get_watermarker())
        costs[f"chunk_mark_{frames}_ms"] = _timed(lambda audio=audio, marker=marker: marker.push(audio))
    codes = torch.zeros(160, 16, dtype=torch.long, device=decoder.device)
    costs["clip_decode_160_ms"] = _timed(lambda: fast.codes_to_wavs([codes], [item.prompt]), repeats=3)
    return costs
