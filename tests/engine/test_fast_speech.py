"""The fast engine's speech decoding (`backend/engine/fast/speech.py`) gives stock qwen-tts's audio: its windows
are stock's, and padding each on the right to a fixed length changes nothing before the padding (the decoder is
causal). CPU float32, the tiny checkpoint: one window, several windows, and the edges between them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.engine.fast.speech import CHUNK_FRAMES, WINDOW_FRAMES, SpeechDecoder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tokenizer(engine):
    return engine.tts.model.speech_tokenizer


@pytest.mark.parametrize("frames", [1, 2, 37, WINDOW_FRAMES[0] + 1, CHUNK_FRAMES, CHUNK_FRAMES + 1, 700])
def test_decoding_matches_stock(tokenizer, frames):
    codes = torch.randint(0, 2048, (frames, 16), generator=torch.Generator().manual_seed(frames))
    (want,), rate = tokenizer.decode([{"audio_codes": codes}])
    speech = SpeechDecoder(tokenizer, use_graphs=False)
    have = speech.decode(codes)
    assert rate == speech.sample_rate and have.shape == want.shape == (frames * speech.upsample,)
    assert np.abs(want).max() > 1e-3  # real audio, not silence that any padding would reproduce
    np.testing.assert_allclose(have, want, atol=1e-5)


def test_nothing_to_decode_is_no_audio(tokenizer):
    assert SpeechDecoder(tokenizer, use_graphs=False).decode(torch.zeros(0, 16, dtype=torch.long)).size == 0
