"""The Modal app offline: variant table vs. generated classes, image recipes, and each class through `.local()`.

`.local()` runs the class body in this process (its `@modal.enter` once per instance); `engine_config` is the
one seam patched to load the tiny random checkpoint on CPU instead of the volume's model on a GPU.
"""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import modal
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from modal._utils.async_utils import synchronizer

from backend import modal_app
from backend.errors import EngineConfigError
from backend.schema import CloneRequest, CloneResult, HealthReport
from backend.variants import DEFAULT_VARIANT, MODELS_DIR, VARIANTS
from tests.backend import REAL_ENGINE_CONFIG, load_tiny_checkpoint, record_batches

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
    assert set(spec.volumes) == {MODELS_DIR}
    assert cls._get_user_cls().variant is variant


def test_image_recipes_are_the_plans():
    fa2, sdpa = modal_app.IMAGE_STEPS["fa2"], modal_app.IMAGE_STEPS["sdpa"]
    assert [method for method, _ in fa2] == ["apt_install", "env", "pip_install", "pip_install", "pip_install"]
    assert fa2[0][1] == ("sox", "libsox-fmt-all", "libsndfile1", "ffmpeg", "gcc")  # gcc: Triton, fast engine
    assert set(fa2[1][1][0]) == {"HF_HOME", "TRANSFORMERS_CACHE", "HF_HUB_CACHE", "TOKENIZERS_PARALLELISM"}
    assert fa2[2][1] == ("torch==2.9.0", "torchaudio==2.9.0")  # its own step, before qwen-tts
    assert "qwen-tts==0.1.1" in fa2[3][1]
    assert fa2[4][1] == (
        "https://github.com/Dao-AILab/flash-attention/releases/download/v2.8.3/"
        "flash_attn-2.8.3+cu12torch2.9cxx11abiTRUE-cp312-cp312-linux_x86_64.whl",
    )
    assert sdpa[2][1] == ("torch==2.10.0", "torchaudio==2.10.0")
    assert sdpa[:2] + sdpa[3:] == fa2[:2] + fa2[3:4]  # same recipe otherwise, no flash-attn


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
def test_web_endpoint_through_local(services, clip):
    client = TestClient(services["06b"].web.local())
    assert client.get("/health").json()["variant"] == "06b"
    body = {"text": "Hi.", "language": "English", "ref_audio_base64": base64.b64encode(clip).decode(),
            "ref_text": "A tone.", "max_new_tokens": 8}
    response = client.post("/clone", json=body)
    assert response.status_code == 200 and response.json()["variant"] == "06b"


@pytest.mark.slow
async def test_concurrent_clones_to_one_container_share_one_generation(on_cpu, monkeypatch, clip):
    """Method inputs and web requests alike: four at once become one engine batch and four results."""
    monkeypatch.setattr(modal_app, "BATCH_WINDOW_S", 1.0)  # wide enough for all four to arrive on a busy machine
    batches = record_batches(monkeypatch)
    service = entered(modal_app.TTSSdpa())  # its engine and batcher are built after the spy
    texts = ["One.", "Two, a little longer.", "Three.", "Four!"]

    replies = await asyncio.gather(*(service.clone.local(request(clip, text=text, seed=None)) for text in texts))
    results = [CloneResult.model_validate(reply["result"]) for reply in replies]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=service.web.local()), base_url="http://tts") as web:
        responses = await asyncio.gather(*(web.post("/clone", json={
            "text": text, "ref_audio_base64": base64.b64encode(clip).decode(), "max_new_tokens": 8,
        }) for text in texts))

    assert [sorted(r.text for r in batch) for batch in batches] == [sorted(texts)] * 2
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
