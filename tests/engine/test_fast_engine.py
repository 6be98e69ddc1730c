"""`engine_mode` selects the decode path, and health and results say which one ran."""

from __future__ import annotations

import pytest

from backend.engine import Engine, EngineConfig
from backend.schema import CloneRequest
from tests.clips import sine_clip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fast_engine(tiny_checkpoint):
    instance = Engine(EngineConfig(model=str(tiny_checkpoint), variant="test", engine_mode="fast", fast_max_batch=2))
    instance.load()
    return instance


def test_auto_on_the_cpu_is_stock(tiny_checkpoint):
    instance = Engine(EngineConfig(model=str(tiny_checkpoint), variant="test", engine_mode="auto"))
    instance.load()
    assert instance.engine_mode == "stock"
    assert instance.health().engine_mode == "stock" and instance.health().fallback_reason is None  # by design


def test_auto_serves_stock_and_says_why_when_the_fast_engine_cannot_start(tiny_checkpoint, monkeypatch):
    """On a GPU, "auto" builds the fast engine while loading; here its builder fails as it does on a machine
    without a C compiler for Triton. "fast" asked for explicitly fails instead."""
    from backend.engine import fast

    def broken(*args, **kwargs):
        raise RuntimeError("Failed to find C compiler.")

    monkeypatch.setattr(fast, "FastTTS", broken)
    instance = Engine(EngineConfig(model=str(tiny_checkpoint), variant="test", engine_mode="auto"))
    instance.load()
    assert instance._load_fast("cuda:0") is None  # the step `load` runs on a CUDA device
    health = instance.health()
    assert health.engine_mode == "stock"
    assert health.fallback_reason == "fast engine failed to start: RuntimeError: Failed to find C compiler."
    with pytest.raises(RuntimeError, match="C compiler"):
        Engine(EngineConfig(model=str(tiny_checkpoint), engine_mode="fast")).load()


def test_fast_mode_clones_a_batch_larger_than_its_bucket(fast_engine):
    """Three requests with a largest bucket of 2: two decode together, the third takes a slot once one frees."""
    clip = sine_clip()
    requests = [CloneRequest(reference=clip, text=text, language="English", max_new_tokens=8)
                for text in ("Hello there.", "A second, longer sentence to speak.", "Third.")]
    results = fast_engine.clone_batch(requests)
    assert [r.engine_mode for r in results] == ["fast"] * 3
    assert [r.batch_size for r in results] == [2, 2, 1]
    assert all(0 < r.frames <= 7 for r in results)
    health = fast_engine.health()
    assert health.engine_mode == "fast"
    batch = health.fast_batch  # the continuous batch, idle again; never more rows a step than its largest bucket
    assert (batch.active, batch.waiting, batch.max_batch) == (0, 0, 2)
    assert batch.frames >= sum(r.frames for r in results) and 0 < batch.rows_per_step <= 2


def test_fast_mode_is_reproducible_with_a_seed(fast_engine):
    request = CloneRequest(reference=sine_clip(), text="Same seed, same audio.", seed=11, max_new_tokens=10)
    assert fast_engine.clone(request).audio == fast_engine.clone(request).audio


def test_a_seeded_request_sounds_the_same_alone_and_in_a_batch(fast_engine):
    """Each row draws from its own seed, so a seeded request needs no generation of its own."""
    clip = sine_clip()
    seeded = CloneRequest(reference=clip, text="Same seed, same audio.", seed=11, max_new_tokens=10)
    others = [CloneRequest(reference=clip, text=text, max_new_tokens=12) for text in ("First.", "Other words.")]
    in_company = fast_engine.clone_batch([others[0], seeded, others[1]])[1]
    assert in_company.batch_size == 2 and in_company.audio == fast_engine.clone(seeded).audio


def test_a_stream_is_the_whole_clip_in_chunks_and_passes_the_watermarker(fast_engine, monkeypatch):
    """Streamed and whole, one seed: the same number of samples; every streamed sample went through the mark."""
    from backend.watermark import Watermarker

    marked: list[int] = []

    class Counting(Watermarker):
        def mark(self, samples, sample_rate=24_000):
            marked.append(len(samples))
            return super().mark(samples, sample_rate)

    monkeypatch.setattr(fast_engine, "_watermarker", Counting("cpu"))
    talker = fast_engine.tts.model.config.talker_config
    monkeypatch.setattr(talker, "codec_eos_token_id", 10**6)  # 29 frames, whatever the random weights say
    request = CloneRequest(reference=sine_clip(), text="Streamed in chunks.", seed=5, max_new_tokens=30)
    chunks = list(fast_engine.clone_stream(request))
    streamed_marks = len(marked)
    whole = fast_engine.clone(request)
    assert len(chunks) > 1 and sum(chunk.size for chunk in chunks) == whole.frames * 1920 == 29 * 1920
    assert streamed_marks >= len(chunks) - 1  # StreamMarker marks per chunk pushed (and once at the end)
