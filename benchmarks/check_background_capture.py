"""GPU check (not a benchmark): the background thread's first step, the prompt prefill's and the speech decoder's
remaining graphs, captured while prompts are prefilled on another thread, changes no prefill's result.

Why: those captures run while requests are served. The prefill's graphs read and write one set of static buffers,
so a capture must warm up on scratch buffers and record without executing (`prefill.py`); a prompt whose cache
length has no graph yet prefills eagerly. The CPU tests stand in for CUDA graphs; this runs the real ones.

Run on a GPU machine, repo root: `python3 benchmarks/check_background_capture.py` (builds the tiny random
checkpoint in /tmp/tiny). Prints what was captured, how many prefills ran during and after it, any result that
differed from the same prompt prefilled before (eagerly or on a load-time graph), and a clone afterwards.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.engine import Engine, EngineConfig  # noqa: E402
from backend.engine.checkpoint import build_random_checkpoint, is_checkpoint  # noqa: E402
from backend.engine.fast.staging import TalkerInputs  # noqa: E402
from backend.schema import CloneRequest  # noqa: E402
from tests.clips import sine_clip  # noqa: E402

LENGTHS = (5, 300, 700, 1000, 1500)  # prompt tokens: load-time graphs (256-768 slots) and background ones
TOLERANCE = 0.05  # bf16: a graph replays the eager kernels, so results agree far closer than this


def prompt(tokens: int, hidden: int, device: torch.device, dtype: torch.dtype) -> TalkerInputs:
    generator = torch.Generator().manual_seed(tokens)
    return TalkerInputs((torch.randn(1, tokens, hidden, generator=generator) * 0.1).to(device, dtype),
                        torch.ones(1, tokens, dtype=torch.long, device=device),
                        torch.randn(1, 4, hidden, generator=generator).to(device, dtype),
                        torch.zeros(1, 1, hidden, device=device, dtype=dtype))


def staged(stager, inputs: TalkerInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompt's K/V (every layer) and first logits, once its prefill has run."""
    result = stager.stage(inputs)
    if result.ready is not None:
        result.ready.synchronize()
    return torch.stack([keys.float() for keys in result.keys]), result.logits.float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--checkpoint", type=Path, default=Path("/tmp/tiny"))
    args = parser.parse_args()
    if not is_checkpoint(args.checkpoint):
        build_random_checkpoint("tiny", args.checkpoint)
    engine = Engine(EngineConfig(model=str(args.checkpoint), variant="check", engine_mode="fast", device=args.device,
                                 fast_max_batch=4, max_new_tokens_cap=1024, fast_prompt_slots=1024))
    engine.load(start_background=False)
    fast = engine._fast
    stager = fast.decoder.stager
    prefill = stager.prefill
    hidden = fast.decoder.talker.model.config.hidden_size
    inputs = {n: prompt(n, hidden, prefill.device, prefill.dtype) for n in LENGTHS}
    print(f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}; prefill graphs at load "
          f"{sorted(prefill._graphs)} of {prefill.buckets}", flush=True)
    with torch.inference_mode():
        reference = {n: staged(stager, inputs[n]) for n in LENGTHS}
    mismatches: list[tuple] = []
    runs = 0
    stop = threading.Event()

    def prefill_meanwhile() -> None:
        nonlocal runs
        with torch.inference_mode():
            while not stop.is_set():
                for n in LENGTHS:
                    keys, logits = staged(stager, inputs[n])
                    apart = ((keys - reference[n][0]).abs().max().item(), (logits - reference[n][1]).abs().max().item())
                    if max(apart) >= TOLERANCE:
                        mismatches.append((n, apart, sorted(prefill._graphs)))
                    runs += 1

    worker = threading.Thread(target=prefill_meanwhile)
    worker.start()
    time.sleep(0.5)
    started = time.perf_counter()
    fast.capture_other_graphs()
    took = time.perf_counter() - started
    time.sleep(1.0)
    stop.set()
    worker.join()
    print(f"captured in {took:.2f} s: prefill {sorted(prefill._graphs)} (failed {sorted(prefill._failed)}), speech "
          f"windows {sorted(fast.speech._graphs)}, short rows {sorted(fast.speech._short._graphs)}", flush=True)
    print(f"prefills during and after the capture: {runs}; differing from before: {mismatches[:5] or 'none'}")
    result = engine.clone(CloneRequest(reference=sine_clip(), text="A long sentence to say. " * 30, max_new_tokens=60))
    print(f"a clone afterwards: {result.frames} frames, {result.engine_mode}")
    print("OK" if not mismatches else "FAIL")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
