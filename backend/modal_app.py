"""The Modal deployment: one app, one volume of checkpoints, one GPU class per variant.

    modal run -m backend.modal_app::download    # once: fetch both checkpoints into the volume
    modal deploy -m backend.modal_app           # the three variant classes (methods + web endpoints)

Each container batches continuously: every `clone` input (method or web endpoint) joins the engine's running
decode at the next frame boundary through a `CloneBatcher`, and leaves it when its clip is done; the engine runs
its fast mode when it starts on the GPU (stock otherwise, one generation at a time; health says why).

Importing this module locally loads no model and makes no network call: the engine (torch, qwen-tts) is
imported inside the container's `@modal.enter`, and images, volumes and classes are lazy Modal definitions.
"""

# No `from __future__ import annotations` here: modal 1.6's @app.cls reads annotations at import and fails on
# string annotations.

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import modal

from backend.batcher import DEFAULT_TIMEOUT_S, CloneBatcher, ProgressSink
from backend.errors import EngineConfigError, VoicebotError
from backend.progress_stream import progress_then_result
from backend.schema import CloneRequest, CloneResult, HealthReport, Progress, WatermarkCheck
from backend.serving import TOKEN_ENV, ServingSettings, WebAccess
from backend.variants import APP_NAME, MODELS_DIR, MODELS_VOLUME, VARIANTS, VOICES_DIR, VOICES_VOLUME, Variant
from backend.wire import (
    END_EVENT,
    audio_event,
    batch_from_call,
    checked_batch,
    forget_from_call,
    error_event,
    invalid_request,
    pcm16_pieces,
    progress_event,
    reply_error,
    reply_ok,
    request_from_call,
)

if TYPE_CHECKING:
    import numpy as np

    from backend.engine import Engine, EngineConfig

# -- images ----------------------------------------------------------------------------------------------
HF_CACHE_DIR = f"{MODELS_DIR}/hf-cache"  # anything fetched from the hub at runtime lands in the volume too
HF_ENV = {
    "HF_HOME": HF_CACHE_DIR,
    "TRANSFORMERS_CACHE": HF_CACHE_DIR,
    "HF_HUB_CACHE": HF_CACHE_DIR,
    "TOKENIZERS_PARALLELISM": "false",
}
# gcc: the fast engine's torch.compile kernels go through Triton, which builds its CUDA launcher with the
# system C compiler at runtime; without one the engine falls back to stock.
SYSTEM_PACKAGES = ("sox", "libsox-fmt-all", "libsndfile1", "ffmpeg", "gcc")
# qwen-tts plus what `backend/` imports in the container (the web API, structured logs, the voice cache).
# numpy<2.0 is the deployment plan's proven pin; fastapi 0.165 brings the per-route body limits the web API uses.
SERVICE_PACKAGES = (
    "qwen-tts==0.1.1", "fastapi[standard]>=0.165", "soundfile", "numpy<2.0", "structlog", "cachetools",
    "pydantic-settings",
    "imageio-ffmpeg", "filetype", "webrtcvad-wheels", "soxr",  # backend.intake: sniffing, ffmpeg, speech check
    # backend.watermark: resemble-perth imports librosa and pkg_resources (gone in setuptools 82) undeclared
    "resemble-perth==1.0.1", "librosa", "setuptools<82",
)
# flash-attn publishes no wheels on PyPI (building the sdist takes hours): install the release wheel built for
# torch 2.9 / CUDA 12 / CPython 3.12. If it fails to import at runtime, the cxx11abiFALSE wheel is the fallback.
FA2_WHEEL = (
    "https://github.com/Dao-AILab/flash-attention/releases/download/v2.8.3/"
    "flash_attn-2.8.3+cu12torch2.9cxx11abiTRUE-cp312-cp312-linux_x86_64.whl"
)

# Every module byte-compiled at build time: a container that finds no `__pycache__` compiles ~2,000 modules of
# torch, transformers and qwen-tts from source at each cold start (seconds; measured on the H200, see
# benchmarks/RESULTS.coldstart.md). pip compiles what it installs, but not every installer does.
COMPILE_BYTECODE = "python -m compileall -q -j 0 $(python -c 'import site; print(*site.getsitepackages())')"
# The watermark's librosa helpers are numba functions, compiled at their first import and call: 33 s with an
# empty numba cache against 5.5 s with it (this repo's CPU machine, `Watermarker.load` plus the first mark; the
# cold start that paid it on the first request is in benchmarks/RESULTS.coldstart.md, round 4). One mark at build
# time fills numba's cache inside the image; compiled for a generic x86-64 CPU (NUMBA_CPU_NAME), the cache stays
# valid on whatever CPU a container lands on, where numba would otherwise key it to the build machine's model.
NUMBA_ENV = {"NUMBA_CPU_NAME": "generic"}
# transformers imports TensorFlow, JAX and Flax wherever it finds them installed (JAX alone was 1.2 s of the serving
# imports on the benchmark's H200 machine); the engine runs on torch only, so an image that gains them from some
# dependency does not pay for them at each cold start.
TORCH_ONLY_ENV = {"USE_TORCH": "1", "USE_FLAX": "0"}
WARM_WATERMARK = (
    "python -c 'import numpy as np; "
    "from perth.perth_net.perth_net_implicit.perth_watermarker import PerthImplicitWatermarker as Marker; "
    "Marker(device=\"cpu\").apply_watermark("
    "(0.1 * np.random.default_rng(0).standard_normal(24000)).astype(np.float32), sample_rate=24000)'"
)

ImageStep = tuple[str, tuple[Any, ...]]  # (modal.Image method, its positional arguments), applied in order


def _service_steps(torch_version: str, *extra: ImageStep) -> list[ImageStep]:
    """The shared recipe; torch gets its own layer BEFORE qwen-tts so pip keeps the pin instead of upgrading."""
    return [
        ("apt_install", SYSTEM_PACKAGES),
        ("env", (HF_ENV | NUMBA_ENV | TORCH_ONLY_ENV,)),
        ("pip_install", (f"torch=={torch_version}", f"torchaudio=={torch_version}")),
        ("pip_install", SERVICE_PACKAGES),
        *extra,
        ("run_commands", (WARM_WATERMARK, COMPILE_BYTECODE)),
    ]


# Plain data, so tests can check the recipe; `build_image` turns each into a modal.Image.
IMAGE_STEPS: dict[str, list[ImageStep]] = {
    "fa2": _service_steps("2.9.0", ("pip_install", (FA2_WHEEL,))),  # newest torch with an FA2 wheel
    "sdpa": _service_steps("2.10.0"),
}
# Every container imports this module first, so every image installs what its top-level imports need
# (backend.batcher, .schema, .errors, and .wire, whose request limits come from the reference-clip intake);
# tests/backend/test_modal_images.py checks each image against it.
MODULE_PACKAGES = (
    "pydantic", "pydantic-settings", "structlog", "numpy<2.0", "soundfile", "imageio-ffmpeg", "filetype",
    "webrtcvad-wheels", "soxr",
)
DOWNLOAD_STEPS: list[ImageStep] = [("pip_install", ("huggingface_hub", *MODULE_PACKAGES)), ("env", (HF_ENV,))]


def build_image(steps: list[ImageStep]) -> modal.Image:
    image = modal.Image.debian_slim(python_version="3.12")
    for method, args in steps:
        image = getattr(image, method)(*args)
    return image.add_local_python_source("backend")


IMAGES: dict[str, modal.Image] = {name: build_image(steps) for name, steps in IMAGE_STEPS.items()}
DOWNLOAD_IMAGE = build_image(DOWNLOAD_STEPS)

# -- app, volume, download ---------------------------------------------------------------------------------
app = modal.App(APP_NAME)
models_volume = modal.Volume.from_name(MODELS_VOLUME, create_if_missing=True)
voices_volume = modal.Volume.from_name(VOICES_VOLUME, create_if_missing=True)


@app.function(image=DOWNLOAD_IMAGE, volumes={MODELS_DIR: models_volume}, timeout=3600)
def download_models() -> None:
    """Fetch every variant's checkpoint into the volume; re-running only fetches what is missing."""
    from huggingface_hub import snapshot_download

    for model_id, model_dir in sorted({(v.model_id, v.model_dir) for v in VARIANTS.values()}):
        print(f"downloading {model_id} -> {model_dir}")
        snapshot_download(model_id, local_dir=model_dir)
    models_volume.commit()


@app.local_entrypoint()
def download() -> None:
    download_models.remote()


# -- the variant classes -----------------------------------------------------------------------------------
# Who may call the web endpoints, and how the container logs: read from the deploying shell at `modal deploy`, then
# inside the container from what is passed to it here (the token as a Modal Secret). Closed by default: with no
# token the endpoints take only requests with a Modal proxy auth token (see `backend.serving`).
SERVING = ServingSettings()
HTTP_SECRETS = [modal.Secret.from_dict({TOKEN_ENV: SERVING.token})] if SERVING.token else []
# Cold start is 70-85 s (the plan's benchmark); an idle A10G costs about 9 cents per 5 minutes, so a container
# stays up 5 minutes after its last request and a conversation's follow-ups find it warm.
SCALEDOWN_S = 300
# Per input, including time queued for a batch: a max-length text (2048 frames) or a batch takes minutes on an
# A10G; past this the input fails instead of holding the GPU.
TIMEOUT_S = 600
# Concurrent inputs per container. Each joins the engine's running decode of up to fast_max_batch (16) rows,
# which costs little more than one request; a burst of 16 therefore shares a warm model instead of cold-starting
# GPU containers, and bad requests are rejected at once (validated before queueing). Beyond 16, Modal starts
# another container.
MAX_INPUTS = 16


# torch.compile's artifacts per variant, keyed by torch/Triton/GPU/engine version (backend/engine/compile_cache.py):
# the first container that compiles saves them, later ones (and snapshot creations) load them.
COMPILE_CACHE_DIR = f"{MODELS_DIR}/compile-cache"
# Snapshot creation can fail while Inductor's compile workers (subprocesses) are alive; one in-process compile
# thread avoids them. Costs cold compiles some seconds; compile-cache hits hardly compile.
SNAPSHOT_COMPILE_ENV = {"TORCHINDUCTOR_COMPILE_THREADS": "1"}


def engine_config(variant: Variant) -> "EngineConfig":
    """The engine a variant's container loads. The one seam tests patch (to the tiny checkpoint on CPU)."""
    from backend.engine import EngineConfig

    # "background": batch 1 at the common lengths is captured in `load` (and in the snapshot), every other
    # shape on a thread started after it while requests are served.
    return EngineConfig(model=variant.model_dir, attention=variant.attention, variant=variant.name, device="cuda:0",
                        fast_capture="background", compile_cache_dir=COMPILE_CACHE_DIR)


def _answer(call: Callable[[], Any]) -> dict[str, Any]:
    """A domain error becomes an error reply, so it reaches the client with its code (not as a pickle)."""
    try:
        return reply_ok(call())
    except VoicebotError as exc:
        return reply_error(exc)


class _BatchedEngine:
    """What the web API serves: the engine, with single clones through the container's batcher (deadline, answer)."""

    def __init__(self, engine: "Engine", batcher: CloneBatcher) -> None:
        self.engine = engine
        self.batcher = batcher

    def clone(self, request: CloneRequest, on_progress: ProgressSink | None = None) -> CloneResult:
        return self.batcher.clone_blocking(request, on_progress)  # the web handlers run in FastAPI's threadpool

    def clone_batch(self, requests: list[CloneRequest]) -> list[CloneResult]:
        return self.engine.clone_batch(requests)

    def clone_stream(self, request: CloneRequest) -> Iterator["np.ndarray"]:
        """Chunks as the continuous batch decodes them (`/v1/audio/speech` with `stream_format: "audio"`)."""
        return self.engine.clone_stream(request)

    def validate(self, request: CloneRequest) -> None:
        self.engine.validate(request)

    def health(self) -> HealthReport:
        return self.engine.health()

    def languages(self) -> list[str]:
        return self.engine.languages()

    def check_watermark(self, audio: bytes) -> WatermarkCheck:
        return self.engine.check_watermark(audio)

    def forget_voices(self, clip_sha256s: list[str]) -> int:
        return self.engine.forget_voices(clip_sha256s)


class _Service:
    """The body of every variant class; the loop below subclasses it with the variant set."""

    variant: Variant

    # snap=True: the loaded model, its compiled kernels and the first CUDA graphs are part of the memory snapshot
    # (GPU memory included, see enable_gpu_snapshot), so later cold starts restore them instead of loading. With
    # snapshots off, Modal runs this hook and then `start` in every cold start.
    @modal.enter(snap=True)
    def load(self) -> None:
        os.environ.update(SNAPSHOT_COMPILE_ENV)  # before torch._inductor reads its config
        from backend.engine import Engine

        SERVING.start()  # first: the default structlog setup prints tracebacks with their locals (tokens, clips)
        self.engine = Engine(engine_config(self.variant))
        try:
            self.engine.load(start_background=False)  # threads do not survive the snapshot: `start` runs it
        except EngineConfigError as exc:
            if exc.code != "model_missing":
                raise
            raise EngineConfigError(
                f"{exc.message} Fill the '{MODELS_VOLUME}' volume with `modal run -m backend.modal_app::download`.",
                code=exc.code,
            ) from exc
        # Its worker thread starts with the first clone, after the snapshot.
        self.batcher = CloneBatcher.for_engine(self.engine)

    # snap=False: runs in every container after the restore (or right after `load` without a snapshot).
    @modal.enter(snap=False)
    def start(self) -> None:
        """Fresh random state per container (a restore would otherwise give every container the snapshot's, so
        unseeded requests would sound the same everywhere), then the remaining graphs on a background thread
        (threads do not survive a snapshot)."""
        from backend.engine.rng import reseed

        reseed()
        self.engine.start_background_capture()

    @modal.method()
    async def clone(self, request: dict) -> dict:
        """Async, so concurrent inputs wait on the container's event loop while the engine decodes them."""
        try:
            result = await self.batcher.clone(request_from_call(request))
        except VoicebotError as exc:
            return reply_error(exc)
        return reply_ok(result.model_dump())

    @modal.method()
    async def clone_stream(self, request: dict):
        """`clone` with progress, for `.remote_gen`: yields `{"progress": {...}}` as the engine reports it (about
        twice a second), then the reply envelope `clone` returns. The request joins the container's running decode
        like any other clone."""
        try:
            clone_request = request_from_call(request)
            async for event in progress_then_result(lambda sink: self.batcher.clone(clone_request, sink)):
                yield progress_event(event) if isinstance(event, Progress) else reply_ok(event.model_dump())
        except VoicebotError as exc:
            yield reply_error(exc)

    @modal.method()
    async def stream_audio(self, request: dict):
        """The speech as it is generated, for `.remote_gen`: `{"audio": <16-bit PCM>}` pieces of at most half a
        second as the engine decodes them, then `{"end": {}}`; a failure as the error item. The request joins the
        container's running decode like any clone; a caller that stops listening frees its slot."""
        from backend.audio_stream import chunks_in_thread  # numpy: not in the download image

        try:
            clone_request = request_from_call(request)
            async for chunk in chunks_in_thread(lambda: self.engine.clone_stream(clone_request),
                                                timeout_s=DEFAULT_TIMEOUT_S):
                for pcm in pcm16_pieces(chunk):
                    yield audio_event(pcm, as_text=False)
            yield END_EVENT
        except VoicebotError as exc:
            yield error_event(exc)

    @modal.method()
    def clone_batch(self, requests: list) -> dict:
        def run() -> list[dict]:
            batch = checked_batch(batch_from_call(requests), lambda request: request, self.engine.validate)
            return [result.model_dump() for result in self.engine.clone_batch(batch)]

        return _answer(run)

    @modal.method()
    def health(self) -> dict:
        return _answer(lambda: self.engine.health().model_dump())

    @modal.method()
    def languages(self) -> dict:
        return _answer(self.engine.languages)

    @modal.method()
    def check_watermark(self, audio: bytes) -> dict:
        """Whether a clip carries the watermark; the `InvalidInput` of a clip that cannot be checked as a reply."""
        def run() -> dict:
            if not isinstance(audio, bytes):
                raise invalid_request([("audio",)])
            return self.engine.check_watermark(audio).model_dump()

        return _answer(run)

    @modal.method()
    def forget_voices(self, clip_sha256s: list) -> dict:
        """Drops this container's cached prompts of those clips (the others' go when they scale down)."""
        return _answer(lambda: self.engine.forget_voices(forget_from_call(clip_sha256s)))

    # Without a token, Modal's proxy checks every request before it reaches (or starts) a container; the app
    # itself is then open, since only callers with a proxy auth token get this far.
    @modal.asgi_app(requires_proxy_auth=SERVING.web_access is WebAccess.PROXY)
    def web(self):
        from backend.openai_api import DEFAULT_MODELS
        from backend.voice_catalog import DirectoryVoiceCatalog
        from backend.web import create_web_app

        SERVING.start()  # again after a snapshot restore: this runs in the restored process
        config = self.engine.config
        # Every container of every variant shares the voices volume: a change is committed at once, and a
        # container reloads before listing and when a name is not found. Run locally, the directory is local.
        sync = {} if modal.is_local() else {"on_changed": voices_volume.commit, "refresh": voices_volume.reload}
        return create_web_app(
            _BatchedEngine(self.engine, self.batcher), token=SERVING.token,
            open_access=SERVING.web_access is not WebAccess.TOKEN,
            audio_limits=config.audio_limits, max_text_chars=config.max_text_chars,
            voices=DirectoryVoiceCatalog(VOICES_DIR, **sync),
            # vllm-omni serves a checkpoint under its hub id: clients written for it send that
            speech_models=(*DEFAULT_MODELS, self.variant.model_id, self.variant.model_id.split("/")[-1]),
        )


for _variant in VARIANTS.values():
    # Each class is a module global under its own name: that is how the container finds it.
    globals()[_variant.class_name] = app.cls(
        image=IMAGES[_variant.image],
        gpu=_variant.gpu,
        volumes={MODELS_DIR: models_volume, VOICES_DIR: voices_volume},
        secrets=HTTP_SECRETS,
        env=SERVING.container_env(),
        scaledown_window=SCALEDOWN_S,
        timeout=TIMEOUT_S,
        enable_memory_snapshot=True,
        experimental_options={"enable_gpu_snapshot": True},  # lets the snap=True hook load straight onto the GPU
    )(modal.concurrent(max_inputs=MAX_INPUTS)(
        type(_variant.class_name, (_Service,), {"variant": _variant, "__module__": __name__})
    ))
