"""Cold start of a serving process on a GPU: imports, Engine.load (weights, compile cache, first eager graphs),
ready, first audio and first result (the first request streamed, as `/speak` and the streaming API do), and the background thread's work (eager graphs for the other shapes, then every shape
compiled and its compiled graph swapped in), each timed from the process's launch.

The parent process launches one fresh child process per scenario (page cache dropped before each, where the
machine allows it), with the production engine configuration of a Modal container (`fast_capture="background"`,
a compile cache folder standing in for the models volume):

- cold: an empty compile cache (the first container after a deploy); its compile cache folders (Inductor's and
  Triton's) fill as it compiles, and are complete when its background capture is done;
- persisted: the compile cache the cold run filled, page cache dropped (any later container, the models volume
  standing in as a local folder);
- second: the same, page cache kept (a second process on the same machine);
then `python -X importtime` of the serving imports, the first round's cut against this one's. Before them the
parent does what building an image does: byte-compiles the packages (with PYTHONPYCACHEPREFIX set) and fills
numba's cache with one watermark (the images' build step).

Spans (`spans` in the JSON) time each step of the start: the weights (`Qwen3TTSModel.from_pretrained`), the
decoder's construction, every capture (eager and compiled) and graph recording, and each generation's plan (which
graph it replayed: its shape and kind). Processes named in `--parity` end by comparing eager and compiled graphs'
codes (seeded and greedy).

    python3 benchmarks/bench_coldstart.py --checkpoint /tmp/voicebot-ckpt --out coldstart.json
"""

from __future__ import annotations

import argparse
import contextlib
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
# The serving images' environment for transformers (backend.modal_app.TORCH_ONLY_ENV; modal is not installed
# where this runs): every serving process here gets it, as a container does.
IMAGE_ENV = {"USE_TORCH": "1", "USE_FLAX": "0"}
SERVING_IMPORTS = ("import torch; from backend.engine.qwen_imports import import_qwen_tts; import_qwen_tts(); "
                   "import backend.engine.fast")
IMPORTS = {  # the serving path's imports by round of cuts: (code, with IMAGE_ENV)
    "round 1 (scikit-learn cut)": ("import torch; from transformers.utils import import_utils; "
                                   "import_utils._sklearn_available = False; from qwen_tts import Qwen3TTSModel; "
                                   "import backend.engine.fast", False),
    "round 2 (+ 25 Hz tokenizer deferred)": (SERVING_IMPORTS, False),
    "round 3 (+ torch only: no TensorFlow, JAX, Flax)": (SERVING_IMPORTS, True),
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- one process's start -----------------------------------------------------------------------------------
def timed_spans(launched: float) -> tuple[dict[str, list], dict[str, object]]:
    """Wrap the start's steps so each call leaves a span (start since launch, seconds, thread, what)."""
    import threading

    from backend.engine.compile_cache import CompileCache
    from backend.engine.fast import FastTTS
    from backend.engine.fast.decoder import FastDecoder
    from backend.engine.fast.prefill import ChunkedPrefill
    from backend.engine.fast.speech import SpeechDecoder
    from backend.engine.qwen_imports import import_qwen_tts
    from backend.watermark import Watermarker

    spans: dict[str, list] = {name: [] for name in (
        "weights", "watermark_load", "decoder_init", "capture", "capture_eager", "record", "speech_capture",
        "prefill_capture", "plan", "talker_inputs", "stage", "speech_decode", "mark", "cache_load", "cache_save")}

    def timed(name, original, describe=lambda a, k, result: str(a[0]) if a else ""):
        def wrapper(self, *a, **k):
            started = time.time()
            result = original(self, *a, **k)
            spans[name].append(dict(start=started - launched, seconds=time.time() - started,
                                    thread=threading.current_thread().name, what=describe(a, k, result)))
            return result
        return wrapper

    def planned(a, k, result):  # which graph (or none) a generation of shape a runs in
        decoder, (_, advance) = planned.decoder, result
        shape = next((s for s, graph in list(decoder._graphs.items()) if graph.replay == advance), None)
        kind = "none" if shape is None else "compiled" if shape in decoder._compiled_graphs else "eager"
        return f"{tuple(a)} -> {shape} {kind}"

    def plan(self, *a, **k):
        planned.decoder = self
        return plan_timed(self, *a, **k)

    plan_timed = timed("plan", FastDecoder._plan, planned)
    model = import_qwen_tts()
    originals = dict(model_from_pretrained=model.from_pretrained.__func__, init=FastTTS.__init__,
                     capture=FastDecoder.capture, capture_eager=FastDecoder.capture_eager, record=FastDecoder._record,
                     plan=FastDecoder._plan, load=CompileCache.load, save=CompileCache.save,
                     watermark_load=Watermarker.load, speech_capture=SpeechDecoder._capture,
                     prefill_capture=ChunkedPrefill.capture, talker_inputs=FastTTS.talker_inputs,
                     stage=FastDecoder.stage, speech_decode=SpeechDecoder.decode, mark=Watermarker.mark)
    model.from_pretrained = classmethod(timed("weights", originals["model_from_pretrained"], lambda a, k, r: ""))
    FastTTS.__init__ = timed("decoder_init", originals["init"], lambda a, k, r: "")
    FastDecoder.capture = timed("capture", originals["capture"])
    FastDecoder.capture_eager = timed("capture_eager", originals["capture_eager"])
    FastDecoder._record = timed("record", originals["record"],
                                lambda a, k, r: f"{a[0]} {'compiled' if k.get('compiled', True) else 'eager'}")
    FastDecoder._plan = plan
    CompileCache.load = timed("cache_load", originals["load"], lambda a, k, r: str(r))
    CompileCache.save = timed("cache_save", originals["save"], lambda a, k, r: str(r))
    # the rest of the start and of a request's path, which a cold process may pay for on first use
    frames = lambda a, k, r: str(getattr(a[0], "shape", ""))  # noqa: E731
    Watermarker.load = timed("watermark_load", originals["watermark_load"], lambda a, k, r: "")
    SpeechDecoder._capture = timed("speech_capture", originals["speech_capture"],
                                   lambda a, k, r: f"windows {a[0]}, rows {a[1]}")
    ChunkedPrefill.capture = timed("prefill_capture", originals["prefill_capture"])
    FastTTS.talker_inputs = timed("talker_inputs", originals["talker_inputs"], lambda a, k, r: "")
    FastDecoder.stage = timed("stage", originals["stage"], lambda a, k, r: "")
    SpeechDecoder.decode = timed("speech_decode", originals["speech_decode"], frames)
    Watermarker.mark = timed("mark", originals["mark"], frames)
    return spans, originals


def parity(engine, request, first_codes, spans) -> dict | None:
    """Eager vs compiled at batch 1: the seeded first request (which replayed an eager graph) against the same
    request on its shape's compiled graph, and a greedy generation on that compiled graph against one in eager
    frames (the kernels an eager graph replays). Frames equal from the start, and in all. None when the first
    request did not replay an eager graph or its compiled graph is not there yet. Safe while the background
    thread still compiles: it only changes graphs between generations, and this plans inside one."""
    fast, decoder = engine._fast, engine._fast.decoder
    first_plan = spans["plan"][0]["what"] if spans["plan"] else ""
    shape = first_plan.split(" -> ")[-1].rsplit(" ", 1)[0]
    if not first_plan.endswith(" eager") or shape not in {str(s) for s in decoder._compiled_graphs}:
        return None

    def compare(a, b) -> dict:
        same = (a == b).all(-1)
        return dict(frames=int(same.numel()), leading_equal=int(same.int().cumprod(0).sum()), equal=int(same.sum()))

    _, seeded = engine_codes(engine, request)
    seeded_plan = spans["plan"][-1]["what"]
    prompt = engine.tts.create_voice_clone_prompt(ref_audio=request_audio(request), ref_text=REF_TEXT)[0]
    greedy = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=request.max_new_tokens)
    compiled = fast.generate_codes(TEXT, "english", [prompt], **greedy)[0]
    compiled_plan = spans["plan"][-1]["what"]
    decoder._plan = lambda rows, length: (rows, lambda: decoder._frame(decoder.buffers, rows, length, compiled=False))
    try:
        eager = fast.generate_codes(TEXT, "english", [prompt], **greedy)[0]
    finally:
        del decoder._plan
    return dict(first_plan=first_plan, seeded_plan=seeded_plan, seeded_eager_vs_compiled=compare(first_codes, seeded),
                greedy_compiled_plan=compiled_plan, greedy_eager_frames_vs_compiled=compare(eager, compiled))


@contextlib.contextmanager
def kept_jobs(engine):
    """The continuous-batch jobs `engine` submits meanwhile (their futures give the codes they generated)."""
    fast = engine._fast
    original, jobs = fast.submit, []

    def keep(*a, **k):
        jobs.append(original(*a, **k))
        return jobs[-1]

    fast.submit = keep
    try:
        yield jobs
    finally:
        del fast.submit


def streamed_codes(engine, request, launched: float, marks: dict):
    """Stream `request` as `/speak` and the streaming API do (`Engine.clone_stream`), marking its first audio chunk
    (`first_audio`) and its end (`first_result`); the codes its job generated."""
    with kept_jobs(engine) as jobs:
        for _ in engine.clone_stream(request):
            marks.setdefault("first_audio", time.time() - launched)
    marks["first_result"] = time.time() - launched
    return jobs[0].future.result()


def engine_codes(engine, request):
    """The engine's result for `request` and the codes it generated (its job in the continuous batch)."""
    with kept_jobs(engine) as jobs:
        result = engine.clone(request)
    return result, jobs[0].future.result()


def request_audio(request):
    import io

    import soundfile as sf

    samples, rate = sf.read(io.BytesIO(request.reference), dtype="float32")
    return samples, rate


def child(args: argparse.Namespace) -> None:
    """Run in a fresh process: print one JSON line of phase times (seconds since the parent launched it)."""
    launched = args.launched
    marks: dict[str, float] = {"python_started": time.time() - launched}
    from backend.engine.prefetch import prefetch_checkpoint

    prefetch_checkpoint(args.checkpoint / args.preset)  # what Engine.load starts before its imports
    import torch

    marks["torch_imported"] = time.time() - launched
    from backend.engine.engine import Engine
    from backend.engine.qwen_imports import import_qwen_tts

    import_qwen_tts()
    import backend.engine.fast  # noqa: F401 - what load imports next

    marks["imported"] = time.time() - launched
    import numpy as np

    from backend.audio import to_wav
    from backend.engine import EngineConfig
    from backend.schema import CloneRequest

    spans, _ = timed_spans(launched)
    cuda = args.device.startswith("cuda")
    config = EngineConfig(model=str(args.checkpoint / args.preset), variant="coldstart", attention="sdpa",
                          dtype="bfloat16" if cuda else "float32", device=args.device, engine_mode="fast",
                          fast_capture="background",
                          compile_cache_dir=str(args.volume))
    engine = Engine(config)
    engine.load(start_background=False)  # as the Modal class: loaded in the snapshot step, then started
    marks["ready"] = time.time() - launched
    thread = engine.start_background_capture()
    engine.tts.model.config.talker_config.codec_eos_token_id = 10**6  # fixed length: EOS never sampled
    clip = to_wav((0.1 * np.random.default_rng(0).standard_normal(24_000 * 5)).astype(np.float32), 24_000)
    request = CloneRequest(reference=clip, ref_text=REF_TEXT, text=TEXT, language="English",
                           max_new_tokens=args.frames + 1, seed=1)
    first_codes = streamed_codes(engine, request, launched, marks)
    started = time.time()
    burst = engine.clone_batch([CloneRequest(reference=clip, ref_text=REF_TEXT, text=f"{TEXT} {i}",
                                             language="English", max_new_tokens=args.frames + 1) for i in range(4)])
    marks["burst4_while_capturing_s"] = time.time() - started
    marks["burst4_done"] = time.time() - launched
    if thread is not None:
        thread.join(timeout=max(1.0, float(args.background_limit) - (time.time() - launched)))
        marks["background_done" if not thread.is_alive() else "background_unfinished"] = time.time() - launched
    started = time.time()
    engine.clone_batch([CloneRequest(reference=clip, ref_text=REF_TEXT, text=f"{TEXT} {i}", language="English",
                                     max_new_tokens=args.frames + 1) for i in range(4)])
    marks["burst4_after_capture_s"] = time.time() - started
    decoder = engine._fast.decoder
    records = spans["record"]
    eager_done = [r["start"] + r["seconds"] for r in records if r["what"].endswith("eager")]
    compiled_done = {r["what"].removesuffix(" compiled"): r["start"] + r["seconds"] for r in records
                     if r["what"].endswith("compiled")}
    marks["eager_graphs_done"] = max(eager_done, default=float("nan"))
    first_plan = spans["plan"][0]["what"].split(" -> ")[1].rsplit(" ", 1)[0] if spans["plan"] else ""
    if first_plan in compiled_done:
        marks["first_shape_compiled_swapped_in"] = compiled_done[first_plan]
    result = dict(marks=marks, spans=spans, first_frames=int(first_codes.shape[0]),
                  burst_frames=[r.frames for r in burst], load_s=engine.health().load_s,
                  graphs=decoder.graph_status(), engine_mode=engine.engine_mode,
                  fallback_reason=engine._fallback_reason,
                  peak_gb=torch.cuda.max_memory_allocated() / 1024**3 if cuda else 0.0,
                  inductor_dir=os.environ.get("TORCHINDUCTOR_CACHE_DIR"))
    if args.parity == "1":
        result["parity"] = parity(engine, request, first_codes, spans)
    print("RESULT " + json.dumps(result), flush=True)
    os._exit(0)  # an unfinished background compile (daemon thread, compile workers) must not hold the exit


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


def launch(args: argparse.Namespace, name: str, volume: str, *, drop: bool, background_limit: str) -> dict:
    dropped = drop and drop_page_cache()
    command = [sys.executable, __file__, "--child", "--checkpoint", str(args.checkpoint), "--preset", args.preset,
               "--device", args.device, "--frames", str(args.frames), "--background-limit",
               background_limit, "--volume", volume, "--parity", str(int(name in args.parity.split(",")))]
    launched = time.time()
    done = subprocess.run([*command, "--launched", repr(launched)], capture_output=True, text=True,
                          timeout=args.child_limit)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        log(f"{name} failed ({done.returncode}): {done.stderr[-2000:]}")
        return dict(error=done.stderr[-1500:], page_cache_dropped=dropped)
    result = json.loads(lines[-1].removeprefix("RESULT ")) | dict(page_cache_dropped=dropped)
    marks = result["marks"]
    log(f"{name}: imports {marks['imported']:.1f} s, ready {marks['ready']:.1f} s, first audio "
        f"{marks.get('first_audio', float('nan')):.1f} s, first result "
        f"{marks['first_result']:.1f} s, first shape compiled "
        f"{marks.get('first_shape_compiled_swapped_in', float('nan')):.1f} s, background done "
        f"{marks.get('background_done', float('nan')):.1f} s, graphs {result['graphs']}")
    return result


def importtime(code: str, image_env: bool) -> dict:
    """Wall time of a fresh process doing `code` (with the images' environment or without it) and its largest
    imports (cumulative microseconds)."""
    drop_page_cache()
    env = {key: value for key, value in os.environ.items() if image_env or key not in IMAGE_ENV}
    started = time.time()
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          timeout=300, env=env)
    wall = time.time() - started
    rows = [(int(m[1]), m[2].strip()) for m in re.finditer(r"import time:\s+\d+ \|\s+(\d+) \|(.*)", done.stderr)]
    top = sorted(rows, reverse=True)[:15]
    return dict(wall_s=wall, ok=done.returncode == 0, top=[dict(module=n, seconds=us / 1e6) for us, n in top])


def compile_bytecode() -> float:
    """Byte-compile every package on the path into PYTHONPYCACHEPREFIX, as `pip install` does when an image is
    built: the device's torch tree ships without `__pycache__` and is read-only, so otherwise each fresh process
    compiles ~2,000 modules from source (seconds of "imports" no container pays)."""
    import site

    started = time.time()
    roots = [p for p in {*site.getsitepackages(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)} if p]
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", *roots], capture_output=True, timeout=600)
    return time.time() - started


def warm_numba_cache(work: Path) -> float:
    """Fill numba's cache as the images' build step does (`backend.modal_app.WARM_WATERMARK`: one mark, compiled
    for a generic CPU), into a folder of this run that every child then reads (the environment is inherited): the
    watermark's librosa helpers otherwise compile on the first process's path, 20 s and more, which no container
    of the images pays."""
    os.environ.update(NUMBA_CPU_NAME="generic", NUMBA_CACHE_DIR=str(work / "numba-cache"))
    started = time.time()
    subprocess.run([sys.executable, "-c", "from backend.watermark import Watermarker; Watermarker('cpu').load()"],
                   check=True, capture_output=True, timeout=600, cwd=HERE.parent)
    return time.time() - started


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

    if os.environ.get("PYTHONPYCACHEPREFIX"):
        result["bytecode_compiled_s"] = compile_bytecode()
        log(f"bytecode compiled into {os.environ['PYTHONPYCACHEPREFIX']} in {result['bytecode_compiled_s']:.0f} s")
    os.environ.update(IMAGE_ENV)  # inherited by every process from here on
    result["numba_cache_warmed_s"] = warm_numba_cache(work)
    log(f"numba's cache filled in {result['numba_cache_warmed_s']:.0f} s")
    names = args.scenarios.split(",")
    limits = args.background_limit.split(",")
    for name, limit in zip(names, limits * len(names) if len(limits) == 1 else limits, strict=True):
        log(f"scenario {name}")
        result["scenarios"][name] = launch(args, name, str(volume), drop=name != "second", background_limit=limit)
        result["scenarios"][name]["compile_cache_mb"] = folder_mb(volume)
        args.out.write_text(json.dumps(result, indent=1))
    for label, (code, image_env) in list(IMPORTS.items())[len(IMPORTS) - args.imports:] if args.imports else ():
        result["imports"][label] = importtime(code, image_env)
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
    parser.add_argument("--imports", type=int, default=len(IMPORTS),
                        help="how many -X importtime processes, the latest rounds': 0 none, 1 this round's")
    parser.add_argument("--background-limit", default="240",
                        help="seconds from launch a process waits for its background capture (one, or one per "
                             "scenario, comma-separated)")
    parser.add_argument("--parity", default="persisted",
                        help="processes that compare eager and compiled graphs' codes at the end (comma list; "
                             "the parent passes a child 1 or 0)")
    parser.add_argument("--child-limit", type=float, default=400.0)
    parser.add_argument("--out", type=Path, default=Path("coldstart.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--launched", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--volume", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    child(args) if args.child else parent(args)


if __name__ == "__main__":
    main()
