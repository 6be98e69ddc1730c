"""The stock engine end to end on the tiny random checkpoint, through qwen-tts's real loader and generate."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import soundfile as sf

from backend.engine import Engine, EngineConfig
from backend.engine.checkpoint import is_checkpoint
from backend.errors import EngineConfigError, InvalidInput
from backend.schema import FRAME_SECONDS, SAMPLE_RATE, CloneRequest
from tests.clips import sine_clip


def decode(wav: bytes) -> tuple[np.ndarray, sf._SoundFileInfo]:
    return sf.read(io.BytesIO(wav), dtype="float32")[0], sf.info(io.BytesIO(wav))


def test_checkpoint_has_the_published_layout(tiny_checkpoint):
    assert is_checkpoint(tiny_checkpoint)
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert config["model_type"] == "qwen3_tts" and config["tts_model_type"] == "base"
    assert sum(config["talker_config"]["rope_scaling"]["mrope_section"]) == config["talker_config"]["head_dim"] // 2
    tokenizer = json.loads((tiny_checkpoint / "speech_tokenizer" / "config.json").read_text())
    assert tokenizer["model_type"] == "qwen3_tts_tokenizer_12hz"


def test_clone_returns_24khz_mono_wav_of_whole_frames(engine):
    result = engine.clone(CloneRequest(reference=sine_clip(), text="Hello there.", language="English", seed=3))
    samples, info = decode(result.audio)
    assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
    assert result.frames > 0
    assert len(samples) == result.frames * int(SAMPLE_RATE * FRAME_SECONDS)
    assert result.audio_seconds == pytest.approx(result.frames * FRAME_SECONDS)
    assert np.abs(samples).max() > 0  # random weights still make sound, not silence
    timings = result.timings
    assert timings.total_s >= timings.generate_s > 0 and timings.decode_s > 0
    assert result.attention == "sdpa" and result.engine_mode == "stock" and result.variant == "test"


def test_same_clip_twice_clones_once(engine):
    reference = sine_clip(seconds=2.5)
    before = engine.health().cache
    first = engine.clone(CloneRequest(reference=reference, text="One.", ref_text="A reference line."))
    second = engine.clone(CloneRequest(reference=reference, text="Two.", ref_text="A reference line."))
    other_transcript = engine.clone(CloneRequest(reference=reference, text="Three.", ref_text="Another line."))
    after = engine.health().cache
    assert (first.voice_cached, second.voice_cached, other_transcript.voice_cached) == (False, True, False)
    assert (after.hits - before.hits, after.misses - before.misses) == (1, 2)


def test_fixed_seed_is_reproducible(engine):
    request = CloneRequest(reference=sine_clip(), text="Same seed, same audio.", seed=11)
    assert engine.clone(request).audio == engine.clone(request).audio


def test_batch_returns_one_result_per_text_across_voices(engine):
    requests = [
        CloneRequest(reference=sine_clip(seconds=3.0), text="First voice, first line."),
        CloneRequest(reference=sine_clip(seconds=3.0), text="First voice, second line.", language="French"),
        CloneRequest(reference=sine_clip(seconds=2.0, sample_rate=24_000), text="Second voice.", ref_text="Hi."),
    ]
    results = engine.clone_batch(requests)
    assert len(results) == 3
    assert all(r.frames > 0 and decode(r.audio)[1].samplerate == SAMPLE_RATE for r in results)
    assert results[1].voice_cached  # the batch encoded the first voice once
    assert [r.batch_size for r in results] == [3, 3, 3]
    assert engine.clone_batch([]) == []


def test_batch_rows_keep_their_own_frame_budget(engine):
    """The batch generates up to its largest budget; each row is cut to what its request would get alone."""
    budgets = [4, 9, 14]
    results = engine.clone_batch([CloneRequest(reference=sine_clip(), text="Budget " * n, max_new_tokens=n)
                                  for n in budgets])
    assert all(0 < r.frames <= n - 1 for r, n in zip(results, budgets, strict=True))


def test_frame_budget_grows_with_text_and_is_capped():
    config = EngineConfig(max_new_tokens_cap=300)
    assert config.frame_budget("hi") < config.frame_budget("hi " * 20) <= 300
    assert config.frame_budget("x" * 5000) == 300


def test_max_new_tokens_bounds_generation(engine):
    result = engine.clone(CloneRequest(reference=sine_clip(), text="A long sentence " * 10, max_new_tokens=6))
    assert result.frames <= 6


@pytest.mark.parametrize(
    ("request_kwargs", "code"),
    [
        ({"text": "   "}, "empty_text"),
        ({"text": "x" * 1001}, "text_too_long"),
        ({"language": "Klingon"}, "unknown_language"),
        ({"reference": b"not audio at all"}, "not_audio"),
        ({"reference": sine_clip(seconds=0.4)}, "audio_too_short"),
        ({"reference": sine_clip(seconds=31)}, "audio_too_long"),
        ({"reference": sine_clip(amplitude=0.0)}, "silent_audio"),
    ],
)
def test_bad_requests_fail_with_specific_codes(engine, request_kwargs, code):
    request = CloneRequest(**{"reference": sine_clip(), "text": "Fine.", **request_kwargs})
    served = engine.health().requests_served
    with pytest.raises(InvalidInput) as excinfo:
        engine.clone(request)
    assert excinfo.value.code == code
    assert engine.health().requests_served == served


def test_unknown_language_message_lists_the_valid_ones(engine):
    with pytest.raises(InvalidInput, match="English.*Chinese"):
        engine.clone(CloneRequest(reference=sine_clip(), text="Hi", language="xx"))


def test_health_reports_model_and_counters(engine, tiny_checkpoint):
    engine.clone(CloneRequest(reference=sine_clip(), text="Warm."))
    report = engine.health()
    assert report.model == str(tiny_checkpoint) and report.variant == "test"
    assert report.device == "cpu" and report.gpu is None and report.gpu_memory is None
    assert report.attention == "sdpa" and report.dtype == "float32"
    assert {"torch", "transformers", "qwen-tts"} <= set(report.versions)
    assert report.warm and report.requests_served >= 1 and report.load_s > 0
    assert report.languages[0] == "Auto" and "English" in report.languages and len(report.languages) == 11


def test_health_answers_while_a_generation_holds_the_model(engine):
    """/tts-health must not wait minutes behind a long clone: health never takes the model lock once loaded."""
    from concurrent.futures import ThreadPoolExecutor

    engine.load()
    with engine._lock, ThreadPoolExecutor(1) as pool:  # what a running generation holds
        report = pool.submit(engine.health).result(timeout=30)
    assert report.status == "ok"


def test_languages_come_from_the_model(engine):
    assert engine.languages() == ["Auto", "Chinese", "English", "French", "German", "Italian", "Japanese",
                                  "Korean", "Portuguese", "Russian", "Spanish"]


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_chosen_attention_is_the_active_one(tiny_checkpoint, attention):
    other = Engine(EngineConfig(model=str(tiny_checkpoint), attention=attention))
    assert other.health().attention == attention


def test_flash_attention_without_flash_attn_is_a_clear_error(tiny_checkpoint, monkeypatch):
    monkeypatch.setattr("backend.engine.attention.flash_attn_available", lambda: False)
    fa2 = Engine(EngineConfig(model=str(tiny_checkpoint), attention="flash_attention_2"))
    with pytest.raises(EngineConfigError, match="flash-attn") as excinfo:
        fa2.load()
    assert excinfo.value.code == "flash_attn_missing" and fa2.tts is None


def test_flash_attention_needs_cuda(tiny_checkpoint, monkeypatch):
    monkeypatch.setattr("backend.engine.attention.flash_attn_available", lambda: True)
    with pytest.raises(EngineConfigError) as excinfo:
        Engine(EngineConfig(model=str(tiny_checkpoint), attention="flash_attention_2", device="cpu")).load()
    assert excinfo.value.code == "flash_attn_needs_cuda"


def test_missing_model_directory_is_a_clear_error(tmp_path):
    with pytest.raises(EngineConfigError, match="does not exist"):
        Engine(EngineConfig(model=str(tmp_path / "nope"))).load()
