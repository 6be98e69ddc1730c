"""Cold start of a serving process on a GPU: imports, Engine.load (weights, compile cache, first captures), ready,
first result, and the background capture of the remaining shapes, each timed from the process's launch.

The parent process launches one fresh child process per scenario (page cache dropped before each, where the
machine allows it), with the production engine configuration of a Modal container (`fast_capture="background"`,
a compile cache folder standing in for the models volume):

- cold: an empty compile cache (the first container after a deploy); its compile cache folders (Inductor's and
  Triton's) fill as it compiles, and are complete when its background capture is done;
- persisted: the compile cache the cold run filled, page cache dropped (any later container, the models volume
  standing in as a local folder);
- second: the same, page cache kept (a second process on the same machine);
then `python -X importtime` of the serving imports with and without the import cut.

    python3 benchmarks/bench_coldstart.py --checkpoint /tmp/voicebot-ckpt --out coldstart.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEXT = "Thanks for waiting! Here is the voice you asked for, reading this sentence aloud for everyone."
REF_TEXT = "This is the reference voice, read slowly and clearly."
SCENARIOS = ("cold", "persisted", "second")
IMPORTS = {  # the serving path's imports: before the cut (qwen-tts as it comes) and as Engine.load does them
    "qwen_tts (as is)": "import torch; from qwen_tts import Qwen3TTSModel; import backend.engine.fast",
    "serving (cut)": "import torch; from backend.engine.engine import import_qwen_tts; import_qwen_tts(); "
                     "import backend.engine.fast",
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- one process's start -----------------------------------------------------------------------------------
def child(args: argparse.Namespace) -> None:
    """Run in a fresh process: print one JSON line of phase times (seconds since the parent launched it)."""
    launched = args.launched
    marks: dict[str, float] = {"python_started": time.time() - launched}
    import torch

    marks["torch_imported"] = time.time() - launched
    from backend.engine.engine import Engine, import_qwen_tts

    import_qwen_tts()
    import backend.engine.fast  # noqa: F401 - what load imports next
    from backend.engine.compile_cache import CompileCache
    from backend.engine.fast.decoder import FastDecoder

    marks["imported"] = time.time() - launched
    import numpy as np

    from backend.audio import to_wav
    from backend.engine import EngineConfig
    from backend.schema import CloneRequest

    spans: dict[str, list] = {"capture": [], "record": [], "cache_load": [], "cache_save": []}
    capture, record, cache_load, cache_save = FastDecoder.capture, FastDecoder._record, CompileCache.load, \
        CompileCache.save

    def timed(name, original):
        def wrapper(self, *a, **k):
            started = time.time()
            result = original(self, *a, **k)
            spans[name].append(dict(start=started - launched, seconds=time.time() - started,
                                    thread=__import__("threading").current_thread().name,
                                    what=str(a[0]) if a else "", result=result if isinstance(result, bool) else None))
            return result
        return wrapper

    FastDecoder.capture = timed("capture", capture)
    FastDecoder._record = timed("record", record)  # what a generation may wait for
    CompileCache.load = timed("cache_load", cache_load)
    CompileCache.save = timed("cache_save", cache_save)

    cuda = args.device.startswith("cuda")
    config = EngineConfig(model=str(args.checkpoint / args.preset), variant="coldstart", attention="sdpa",
                          dtype="bfloat16" if cuda else "float32", device=args.device, engine_mode="fast",
                          fast_capture="background",
                          compile_cache_dir=str(args.volume))
    engine = Engine(config)
    engine.load()
    marks["ready"] = time.time() - launched
    thread = engine.start_background_capture()
    engine.tts.model.config.talker_config.codec_eos_token_id = 10**6  # fixed length: EOS never sampled
    clip = to_wav((0.1 * np.random.default_rng(0).standard_normal(24_000 * 5)).astype(np.float32), 24_000)
    first = engine.clone(CloneRequest(reference=clip, ref_text=REF_TEXT, text=TEXT, language="English",
                                      max_new_tokens=args.frames + 1, seed=1))
    marks["first_result"] = time.time() - launched
    started = time.time()
    burst = engine.clone_batch([CloneRequest(reference=clip, ref_text=REF_TEXT, text=f"{TEXT} {i}",
                                             language="English", max_new_tokens=args.frames + 1) for i in range(4)])
    marks["burst4_while_capturing_s"] = time.time() - started
    marks["burst4_done"] = time.time() - launched
    if thread is not None:
        thread.join(timeout=args.background_limit)
        marks["background_done" if not thread.is_alive() else "background_unfinished"] = time.time() - launched
    started = time.time()
    engine.clone_batch([CloneRequest(reference=clip, ref_text=REF_TEXT, text=f"{TEXT} {i}", language="English",
                                     max_new_tokens=args.frames + 1) for i in range(4)])
    marks["burst4_after_capture_s"] = time.time() - started
    decoder = engine._fast.decoder
    result = dict(marks=marks, spans=spans, first_frames=first.frames, burst_frames=[r.frames for r in burst],
                  first_generate_s=first.timings.generate_s, load_s=engine.health().load_s,
                  graphs=len(decoder._graphs), failed=sorted(decoder._failed), engine_mode=engine.engine_mode,
                  fallback_reason=engine._fallback_reason,
                  peak_gb=torch.cuda.max_memory_allocated() / 1024**3 if cuda else 0.0,
                  inductor_dir=os.environ.get("TORCHINDUCTOR_CACHE_DIR"))
    print("RESULT " + json.dumps(result), flush=True)


# -- the parent --------------------------------------------------------------------------------------------
def drop_page_cache() -> bool:
    """Make file reads (packages, weights, caches) come from disk, as in a new container."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6 if path.exists() else 0.0


def launch(args: argparse.Namespace, name: str, volume: str, *, drop: bool) -> dict:
    dropped = drop and drop_page_cache()
    command = [sys.executable, __file__, "--child", "--checkpoint", str(args.checkpoint), "--preset", args.preset,
               "--device", args.device, "--frames", str(args.frames), "--background-limit",
               str(args.background_limit), "--volume", volume]
    launched = time.time()
    done = subprocess.run([*command, "--launched", repr(launched)], capture_output=True, text=True,
                          timeout=args.child_limit)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        log(f"{name} failed ({done.returncode}): {done.stderr[-2000:]}")
        return dict(error=done.stderr[-1500:], page_cache_dropped=dropped)
    result = json.loads(lines[-1].removeprefix("RESULT ")) | dict(page_cache_dropped=dropped)
    marks = result["marks"]
    log(f"{name}: imports {marks['imported']:.1f} s, ready {marks['ready']:.1f} s, first result "
        f"{marks['first_result']:.1f} s, background done {marks.get('background_done', float('nan')):.1f} s")
    return result


def importtime(code: str) -> dict:
    """Wall time of a fresh process doing `code` and its largest imports (cumulative microseconds)."""
    drop_page_cache()
    started = time.time()
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          timeout=300)
    wall = time.time() - started
    rows = [(int(m[1]), m[2].strip()) for m in re.finditer(r"import time:\s+\d+ \|\s+(\d+) \|(.*)", done.stderr)]
    top = sorted(rows, reverse=True)[:15]
    return dict(wall_s=wall, ok=done.returncode == 0, top=[dict(module=n, seconds=us / 1e6) for us, n in top])


def parent(args: argparse.Namespace) -> None:
    import torch

    from bench_common import versions

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    volume = work / "volume"
    result = dict(card=torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                  date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  command=" ".join(sys.argv), frames=args.frames, preset=args.preset,
                  versions=versions("torch", "triton", "transformers", "qwen-tts"), scenarios={}, imports={})

    for name in args.scenarios.split(","):
        log(f"scenario {name}")
        result["scenarios"][name] = launch(args, name, str(volume), drop=name != "second")
        result["scenarios"][name]["compile_cache_mb"] = folder_mb(volume)
        args.out.write_text(json.dumps(result, indent=1))
    for label, code in IMPORTS.items() if args.imports else ():
        result["imports"][label] = importtime(code)
        log(f"imports {label}: {result['imports'][label]['wall_s']:.1f} s")
        args.out.write_text(json.dumps(result, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("/tmp/voicebot-ckpt"))
    parser.add_argument("--preset", default="1.7b")
    parser.add_argument("--frames", type=int, default=250, help="frames per request (EOS suppressed)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--device", default="cuda:0", help="cpu: a smoke test of the script (--preset tiny)")
    parser.add_argument("--work", default="/tmp/coldstart", help="caches and the stand-in for the models volume")
    parser.add_argument("--imports", type=int, default=1, help="0: skip the -X importtime processes")
    parser.add_argument("--background-limit", type=float, default=240.0)
    parser.add_argument("--child-limit", type=float, default=400.0)
    parser.add_argument("--out", type=Path, default=Path("coldstart.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--launched", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--volume", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    child(args) if args.child else parent(args)


if __name__ == "__main__":
    main()
