"""The Modal app offline: variant table vs. generated classes, image recipes, and each class through `.local()`.

`.local()` runs the class body in this process (its `@modal.enter` once per instance); `engine_config` is the
one seam patched to load the tiny random checkpoint on CPU instead of the volume's model on a GPU.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import modal
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from modal._utils.async_utils import synchronizer

from backend import modal_app
from backend.errors import EngineConfigError
from backend.schema import SEED_MAX, CloneRequest, CloneResult, HealthReport, Progress
from backend.serving import OPEN_ENV, TOKEN_ENV, ServingSettings
from backend.variants import DEFAULT_VARIANT, MODELS_DIR, VARIANTS, VOICES_DIR
from backend.wire import MAX_BATCH_ITEMS
from tests.backend import REAL_ENGINE_CONFIG, fresh_logging, load_tiny_checkpoint, record_batches

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "modal-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

pytestmark = pytest.mark.filterwarnings("ignore:.*executing locally.*:UserWarning")  # the volume isn't mounted


# -- configuration -----------------------------------------------------------------------------------------
def service_function(cls: modal.Cls):
    """The Modal function that serves a class's methods (holds its GPU, image and volumes)."""
    return synchronizer._translate_in(cls)._get_class_service_function()


def dockerfile_layers(image: modal.Image) -> list[list[str]]:
    """The Dockerfile commands of each build layer of `image`, base first (from Modal's lazy image closures)."""
    layers, current = [], synchronizer._translate_in(image)
    while current is not None:
        cells = (cell.cell_contents for cell in current._load.__closure__)
        closure = dict(zip(current._load.__code__.co_freevars, cells, strict=True))
        if "base_image" in closure:  # a local-source mount layer: no build commands
            current = closure["base_image"]
            continue
        layers.append(closure["dockerfile_function"]("2025.06").commands)
        current = next(iter(closure["base_images"].values()), None)
    return layers[::-1]


def pip_layer_index(layers: list[list[str]], package: str) -> int:
    return next(i for i, layer in enumerate(layers) if any("pip install" in c and package in c for c in layer))


def test_variant_table():
    assert DEFAULT_VARIANT == "fa2"
    assert {name: (v.gpu, v.attention, v.image, v.model_dir) for name, v in VARIANTS.items()} == {
        "fa2": ("A10G", "flash_attention_2", "fa2", f"{MODELS_DIR}/Qwen3-TTS-12Hz-1.7B-Base"),
        "sdpa": ("A10G", "sdpa", "sdpa", f"{MODELS_DIR}/Qwen3-TTS-12Hz-1.7B-Base"),
        "06b": ("T4", "sdpa", "sdpa", f"{MODELS_DIR}/Qwen3-TTS-12Hz-0.6B-Base"),
    }
    assert len({v.class_name for v in VARIANTS.values()}) == 3


@pytest.mark.parametrize("name", list(VARIANTS))
def test_each_variant_is_a_modal_class_with_its_gpu_image_and_volume(name):
    variant = VARIANTS[name]
    cls = getattr(modal_app, variant.class_name)
    assert isinstance(cls, modal.Cls)
    spec = service_function(cls)._spec
    assert spec.gpus == variant.gpu
    assert spec.image is synchronizer._translate_in(modal_app.IMAGES[variant.image])
    assert set(spec.volumes) == {MODELS_DIR, VOICES_DIR}
    assert cls._get_user_cls().variant is variant


def test_image_recipes_are_the_plans():
    fa2, sdpa = modal_app.IMAGE_STEPS["fa2"], modal_app.IMAGE_STEPS["sdpa"]
    assert [method for method, _ in fa2] == ["apt_install", "env", "pip_install", "pip_install", "pip_install",
                                             "run_commands"]
    assert fa2[0][1] == ("sox", "libsox-fmt-all", "libsndfile1", "ffmpeg", "gcc")  # gcc: Triton, fast engine
    assert set(fa2[1][1][0]) == {"HF_HOME", "TRANSFORMERS_CACHE", "HF_HUB_CACHE", "TOKENIZERS_PARALLELISM",
                                 "NUMBA_CPU_NAME", "USE_TORCH", "USE_FLAX"}
    assert fa2[2][1] == ("torch==2.9.0", "torchaudio==2.9.0")  # its own step, before qwen-tts
    assert "qwen-tts==0.1.1" in fa2[3][1]
    assert fa2[4][1] == (
        "https://github.com/Dao-AILab/flash-attention/releases/download/v2.8.3/"
        "flash_attn-2.8.3+cu12torch2.9cxx11abiTRUE-cp312-cp312-linux_x86_64.whl",
    )
    assert sdpa[2][1] == ("torch==2.10.0", "torchaudio==2.10.0")
    # numba's cache filled by one mark, then every module byte-compiled at build time
    assert fa2[5][1] == sdpa[4][1] == (modal_app.WARM_WATERMARK, modal_app.COMPILE_BYTECODE)
    assert sdpa[:2] + sdpa[3:] == fa2[:2] + fa2[3:4] + fa2[5:]  # same recipe otherwise, no flash-attn


def test_the_watermark_warm_up_step_marks_a_clip_and_fills_a_portable_numba_cache(tmp_path):
    """The build step runs as written with the service packages, and leaves numba's compiled functions in the
    cache for the generic CPU the image's environment names."""
    command = modal_app.WARM_WATERMARK.replace("python", shlex.quote(sys.executable), 1)
    env = {**os.environ, **modal_app.NUMBA_ENV, "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run(command, shell=True, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(tmp_path.rglob("*.nbi")) and list(tmp_path.rglob("*.nbc"))  # index and object code written


def test_built_images_run_the_steps_in_order():
    fa2 = dockerfile_layers(modal_app.IMAGES["fa2"])
    assert fa2[0][0].startswith("FROM python:3.12")
    assert "RUN apt-get install -y sox libsox-fmt-all libsndfile1 ffmpeg gcc" in fa2[1]
    assert "ENV HF_HUB_CACHE=/models/hf-cache" in fa2[2]
    assert fa2[3][-1] == "RUN python -m pip install torch==2.9.0 torchaudio==2.9.0"
    assert pip_layer_index(fa2, "torch==2.9.0") < pip_layer_index(fa2, "qwen-tts==0.1.1") < pip_layer_index(
        fa2, "flash_attn-2.8.3+cu12torch2.9cxx11abiTRUE-cp312-cp312-linux_x86_64.whl")
    sdpa = dockerfile_layers(modal_app.IMAGES["sdpa"])
    assert sdpa[3][-1] == "RUN python -m pip install torch==2.10.0 torchaudio==2.10.0"
    assert not any("flash_attn" in command for layer in sdpa for command in layer)
    for image in modal_app.IMAGES.values():
        assert "backend" in synchronizer._translate_in(image)._added_python_source_set


# -- the classes, run locally ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def on_cpu(tiny_checkpoint):
    """Every variant loads the tiny checkpoint with SDPA on the CPU, for this module."""
    with pytest.MonkeyPatch.context() as patch:
        load_tiny_checkpoint(patch, tiny_checkpoint)
        yield


def entered(service):
    """`service` after its `@modal.enter`: modal 1.6's `.local()` runs the hook before a sync method only, not
    before an async one such as `clone`."""
    service.languages.local()
    return service


def local_stream(service, method: str, *args):
    """An async generator method run in this process. modal 1.6's `.local()` wraps every async method in a
    coroutine that awaits its result, and a generator cannot be awaited; so this calls the method's own function
    on the instance `.local()` uses (after `entered`, its `@modal.enter` has run)."""
    function = synchronizer._translate_in(getattr(service, method))
    instance = synchronizer._translate_in(service)._cached_user_cls_instance()
    return function._get_source_info().raw_f(instance, *args)


@pytest.fixture(scope="module")
def services(on_cpu) -> dict:
    return {name: entered(getattr(modal_app, variant.class_name)()) for name, variant in VARIANTS.items()}


def request(clip: bytes, **overrides) -> dict:
    fields = dict(reference=clip, text="Hello there.", language="English", ref_text="A tone.", seed=1,
                  max_new_tokens=8) | overrides
    return CloneRequest(**fields).model_dump()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(VARIANTS))
async def test_methods_through_local(services, name, clip):
    service = services[name]
    health = HealthReport.model_validate(service.health.local()["result"])
    assert health.variant == name and health.attention == "sdpa" and health.device == "cpu"
    assert "English" in service.languages.local()["result"]
    result = CloneResult.model_validate((await service.clone.local(request(clip)))["result"])  # an async method
    samples, sample_rate = sf.read(io.BytesIO(result.audio))
    assert sample_rate == 24_000 and samples.size == result.frames * 1920 and result.variant == name
    batch = service.clone_batch.local([request(clip, text="One."), request(clip, text="Two.")])["result"]
    assert [CloneResult.model_validate(item).voice_cached for item in batch] == [True, True]


@pytest.mark.slow
async def test_invalid_input_comes_back_as_an_error_reply(services, clip):
    reply = await services["sdpa"].clone.local(request(clip, language="Klingon"))
    assert reply["status"] == 422 and reply["error"] == "unknown_language" and "Klingon" in reply["message"]


@pytest.mark.slow
async def test_clone_stream_yields_progress_then_the_reply(services, clip):
    """The generator method `ModalBackend.clone` calls with `.remote_gen`: the engine's reports as they come,
    then the same reply envelope as `clone`; bad input is a single error reply."""
    items = [item async for item in local_stream(services["sdpa"], "clone_stream", request(clip))]
    progress = [Progress.model_validate(item["progress"]) for item in items[:-1]]
    assert [report.stage for report in progress[:2]] == ["cloning", "generating"]
    result = CloneResult.model_validate(items[-1]["result"])
    assert result.frames > 0 and result.variant == "sdpa"
    bad = [item async for item in local_stream(services["sdpa"], "clone_stream",
                                                         request(clip, language="Klingon"))]
    assert len(bad) == 1 and (bad[0]["status"], bad[0]["error"]) == (422, "unknown_language")
    malformed = [item async for item in local_stream(services["sdpa"], "clone_stream", {"text": "no clip"})]
    assert [(item["status"], item["error"]) for item in malformed] == [(422, "invalid_request")]


@pytest.mark.slow
async def test_stream_audio_yields_pcm_pieces_then_the_end(services, clip):
    """The generator method `ModalBackend.clone_stream` calls with `.remote_gen`: half-second PCM pieces as the
    engine yields them, then the end item; the same samples as the clip `clone` makes (same seed); bad input is
    a single error item."""
    items = [item async for item in local_stream(services["sdpa"], "stream_audio", request(clip))]
    assert items[-1] == {"end": {}} and all(set(item) == {"audio"} for item in items[:-1])
    streamed = np.frombuffer(b"".join(item["audio"] for item in items[:-1]), dtype="<i2")
    whole = CloneResult.model_validate((await services["sdpa"].clone.local(request(clip)))["result"])
    samples, _ = sf.read(io.BytesIO(whole.audio), dtype="int16")
    assert np.array_equal(streamed, samples)
    bad = [item async for item in local_stream(services["sdpa"], "stream_audio", request(clip, language="Klingon"))]
    assert [(item["error"]["status"], item["error"]["error"]) for item in bad] == [(422, "unknown_language")]


@pytest.mark.slow
def test_web_endpoint_through_local(services, clip):
    """Without a token (these tests' environment) Modal's proxy checks callers, so the app itself is open."""
    client = TestClient(services["06b"].web.local())
    assert client.get("/health").json()["variant"] == "06b"
    body = {"text": "Hi.", "language": "English", "ref_audio_base64": base64.b64encode(clip).decode(),
            "ref_text": "A tone.", "max_new_tokens": 8}
    response = client.post("/clone", json=body)
    assert response.status_code == 200 and response.json()["variant"] == "06b"


@pytest.mark.slow
async def test_concurrent_clones_to_one_container_decode_together(on_cpu, monkeypatch, clip):
    """Method inputs and web requests alike: four at once decode in one continuous batch (the fast engine, run
    eagerly on the CPU), one engine call each. The decode loop is held until all four wait for a slot."""
    on_the_cpu = modal_app.engine_config
    monkeypatch.setattr(modal_app, "engine_config",
                        lambda variant: on_the_cpu(variant).model_copy(update={"engine_mode": "fast"}))
    batches = record_batches(monkeypatch)
    service = entered(modal_app.TTSSdpa())  # its engine and batcher are built after the spy
    loop_lock, batch = service.engine._fast.decoder._generating, service.engine._fast.batch
    texts = ["One.", "Two, a little longer.", "Three.", "Four!"]

    async def all_four_waiting() -> None:
        while batch.stats().waiting < 4:
            await asyncio.sleep(0.01)
        loop_lock.release()

    loop_lock.acquire()
    calls = asyncio.gather(*(service.clone.local(request(clip, text=text, seed=None)) for text in texts))
    await asyncio.wait_for(all_four_waiting(), 60)
    results = [CloneResult.model_validate(reply["result"]) for reply in await calls]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.web.local()), base_url="http://tts") as web:
        loop_lock.acquire()
        posts = asyncio.gather(*(web.post("/clone", json={
            "text": text, "ref_audio_base64": base64.b64encode(clip).decode(), "max_new_tokens": 8,
        }) for text in texts))
        await asyncio.wait_for(all_four_waiting(), 60)
        responses = await posts

    assert sorted(len(batch) for batch in batches) == [1] * 8  # one engine call per request
    assert [r.batch_size for r in results] == [4] * 4 and all(r.frames > 0 for r in results)
    assert [(r.status_code, r.json()["batch_size"]) for r in responses] == [(200, 4)] * 4


@pytest.mark.slow
def test_fa2_without_flash_attn_fails_clearly(monkeypatch, tiny_checkpoint):
    """Only the checkpoint is swapped: the FA2 class still asks for flash_attention_2 on cuda:0."""
    load_tiny_checkpoint(monkeypatch, tiny_checkpoint, on_cpu=False)
    with pytest.raises(EngineConfigError, match="flash-attn") as raised:
        modal_app.TTSFa2().health.local()
    assert raised.value.code == "flash_attn_missing"


@pytest.mark.slow
def test_missing_checkpoint_says_how_to_download(monkeypatch):
    monkeypatch.setattr(modal_app, "engine_config", REAL_ENGINE_CONFIG)
    with pytest.raises(EngineConfigError, match=r"modal run -m backend\.modal_app::download") as raised:
        modal_app.TTSSdpa().health.local()  # the volume's path does not exist here
    assert raised.value.code == "model_missing"


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_engines_run_fast_on_the_gpu_capturing_in_the_background_with_a_compile_cache(name):
    """A serving container captures batch 1 while loading and the other shapes while serving (no user's batch
    waits for a capture), with torch.compile's artifacts kept on the models volume."""
    config = REAL_ENGINE_CONFIG(VARIANTS[name])
    assert (config.engine_mode, config.fast_capture, config.device) == ("auto", "background", "cuda:0")
    assert config.compile_cache_dir == f"{MODELS_DIR}/compile-cache"
    assert (config.model, config.attention) == (VARIANTS[name].model_dir, VARIANTS[name].attention)


# -- access, logging and malformed calls -------------------------------------------------------------------
# What `modal deploy` sees: the module imported in a fresh interpreter with the deploying shell's variables.
DEPLOY_PROBE = """
import json
from modal._utils.async_utils import synchronizer
from backend import modal_app
for name in ("TTSFa2", "TTSSdpa", "TTS06B"):
    cls = synchronizer._translate_in(getattr(modal_app, name))
    print(json.dumps({
        "proxy_auth": cls._get_partial_functions()["web"].params.webhook_config.requires_proxy_auth,
        "passed": " ".join(repr(secret) for secret in cls._get_class_service_function()._spec.secrets),
    }))
"""


def deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {name: value for name, value in os.environ.items() if not name.startswith("VOICEBOT_")}
    return subprocess.run([sys.executable, "-c", DEPLOY_PROBE], env=base | env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize(("env", "proxy_auth", "passed"), [
    ({}, True, []),
    ({TOKEN_ENV: ""}, True, []),
    ({TOKEN_ENV: TOKEN}, False, [TOKEN_ENV]),
    ({OPEN_ENV: "1"}, False, [OPEN_ENV]),
], ids=["nothing", "empty-token", "token", "open"])
def test_deploying_without_a_token_leaves_the_endpoints_closed_behind_modal_proxy_auth(env, proxy_auth, passed):
    """Closed by default: no token (or an empty one) means Modal's proxy refuses callers without a proxy auth
    token; with a token the container gets it as a Secret; open only when asked for by name."""
    deployed = deploy(env)
    assert deployed.returncode == 0, deployed.stderr
    for line in deployed.stdout.splitlines():
        variant = json.loads(line)
        assert variant["proxy_auth"] is proxy_auth
        assert [name for name in (TOKEN_ENV, OPEN_ENV) if name in variant["passed"]] == passed
        assert TOKEN not in variant["passed"]


def test_deploying_with_a_guessable_token_is_refused_without_printing_it():
    deployed = deploy({TOKEN_ENV: "hunter2-x"})
    assert deployed.returncode != 0
    assert "VOICEBOT_HTTP_TOKEN is shorter than 16 characters" in deployed.stderr
    assert "hunter2-x" not in deployed.stderr + deployed.stdout


@pytest.fixture
def serving(monkeypatch):
    """Set the container's serving environment for one test (and undo the logging it sets up)."""
    with fresh_logging():
        yield lambda **fields: monkeypatch.setattr(modal_app, "SERVING", ServingSettings(**fields))


@pytest.mark.slow
def test_with_a_token_the_web_endpoint_requires_it_everywhere(services, serving):
    serving(http_token=TOKEN)
    client = TestClient(services["06b"].web.local())
    for path in ("/health", "/languages", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 401, path
    assert client.get("/health", headers=AUTH).json()["variant"] == "06b"
    assert client.get("/docs", headers=AUTH).status_code == 404  # no API pages in a deployment


@pytest.mark.slow
def test_a_crash_at_debug_leaves_no_token_text_or_clip_in_the_logs(on_cpu, monkeypatch, serving, capfd, clip):
    """The container sets up logging when it starts: a 500's traceback is plain (no local variables, which held
    the bearer token, the user's text and the base64 clip) and the token is masked wherever it appears."""
    from backend.engine import Engine

    serving(http_token=TOKEN, log_level="DEBUG")

    def crash(self, requests, **options):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(Engine, "clone_batch", crash)
    service = entered(modal_app.TTSSdpa())  # its batcher binds the crashing method
    client = TestClient(service.web.local(), headers=AUTH, raise_server_exceptions=False)
    text = "My very private sentence number 4711."
    clip_base64 = base64.b64encode(clip).decode()
    response = client.post("/clone", json={"text": text, "ref_audio_base64": clip_base64, "max_new_tokens": 8})

    assert response.status_code == 500 and response.json()["error"] == "internal"
    logs = "".join(capfd.readouterr())
    assert "web.failed" in logs and "RuntimeError: CUDA error" in logs  # the crash is logged, with its traceback
    for private in (TOKEN, text, clip_base64[:40], clip_base64[len(clip_base64) // 2:][:40]):
        assert private not in logs


def too_many(clip: bytes) -> list[dict]:
    return [request(clip)] * (MAX_BATCH_ITEMS + 1)


@pytest.mark.slow
@pytest.mark.parametrize(("call", "message"), [
    (lambda clip: {"text": "Hi"}, "Invalid or missing fields: reference."),
    (lambda clip: "not a request", "Invalid or missing fields: body."),
    (lambda clip: request(clip) | {"seed": SEED_MAX + 1}, "Invalid or missing fields: seed."),
    (lambda clip: request(clip) | {"max_new_tokens": 0}, "Invalid or missing fields: max_new_tokens."),
])
async def test_a_malformed_clone_call_gets_an_error_reply(services, clip, call, message):
    reply = await services["sdpa"].clone.local(call(clip))
    assert reply == {"status": 422, "error": "invalid_request", "message": message}


@pytest.mark.slow
@pytest.mark.parametrize(("call", "code", "message"), [
    (lambda clip: "nope", "invalid_request", "Invalid or missing fields: items."),
    (lambda clip: [], "invalid_request", "Invalid or missing fields: items."),
    (too_many, "invalid_request", "Invalid or missing fields: items."),
    (lambda clip: [request(clip), {"text": "Hi"}], "invalid_request", "Invalid or missing fields: items.1.reference."),
    (lambda clip: [request(clip), request(clip) | {"seed": -(2**63) - 1}], "invalid_request",
     "Invalid or missing fields: items.1.seed."),
    (lambda clip: [request(clip), request(clip, language="xx")], "unknown_language", "items.1: Unknown language 'xx'"),
])
def test_a_malformed_batch_call_gets_an_error_reply_naming_the_item(services, clip, call, code, message):
    reply = services["sdpa"].clone_batch.local(call(clip))
    assert (reply["status"], reply["error"]) == (422, code) and reply["message"].startswith(message)


@pytest.mark.slow
def test_the_openai_api_is_served_by_every_variant(services, clip):
    """The same web app carries `/v1`: the variant's checkpoint name is a model name, and speech comes from its
    engine through the container's batcher."""
    client = TestClient(services["06b"].web.local())
    models = [model["id"] for model in client.get("/v1/models").json()["data"]]
    assert {"Qwen/Qwen3-TTS-12Hz-0.6B-Base", "Qwen3-TTS-12Hz-0.6B-Base", "qwen3-tts", "tts-1"} <= set(models)
    response = client.post("/v1/audio/speech", json={
        "model": "Qwen3-TTS-12Hz-0.6B-Base", "input": "Hi.", "voice": "clip", "response_format": "flac",
        "ref_audio": base64.b64encode(clip).decode(), "ref_text": "A tone.", "max_new_tokens": 8})
    assert response.status_code == 200 and sf.info(io.BytesIO(response.content)).samplerate == 24_000
    assert client.get("/v1/audio/voices").json()["data"] == []  # the voices volume, not mounted here
