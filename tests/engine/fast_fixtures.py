"""A private CPU model for the fast-engine tests: they change its EOS id, which the shared `engine` must not see."""

from __future__ import annotations

import pytest

from tests.clips import sine_samples

REF_TEXT = "hello there, this is my voice"
TEXTS = ["Hello world, this is a test.", "A much longer sentence, so that the batch needs left padding.", "Short."]


@pytest.fixture(scope="module")
def tts(tiny_checkpoint):
    """qwen-tts on the tiny checkpoint, fp32 on the CPU, EOS suppressed so every run has a fixed length."""
    import torch
    from qwen_tts import Qwen3TTSModel

    model = Qwen3TTSModel.from_pretrained(str(tiny_checkpoint), device_map="cpu", dtype=torch.float32,
                                          attn_implementation="sdpa")
    model.model.config.talker_config.codec_eos_token_id = 10**6
    return model


@pytest.fixture(scope="module")
def prompts(tts):
    """An ICL voice prompt (reference codes + transcript) and an x-vector-only one, from one synthetic clip."""
    reference = (sine_samples(3.0, 24_000), 24_000)
    icl = tts.create_voice_clone_prompt(ref_audio=reference, ref_text=REF_TEXT)[0]
    xvector = tts.create_voice_clone_prompt(ref_audio=reference, x_vector_only_mode=True)[0]
    return icl, xvector


@pytest.fixture(scope="module")
def fast(tts):
    from backend.engine.fast import FastTTS

    return FastTTS(tts, max_batch=4, max_len=512)
