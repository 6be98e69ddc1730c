"""Streamed audio chunks, decoded behind left context, add up to the one-shot decode of the same codes."""

from __future__ import annotations

import numpy as np
import pytest

from tests.engine.fast_fixtures import TEXTS, fast, prompts, tts  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow
SAMPLES_PER_FRAME = 1920


@pytest.mark.parametrize("mode", ["icl", "xvector"])
def test_stream_concatenates_to_the_one_shot_clip(fast, prompts, mode):  # noqa: F811
    """40 frames: chunks of 2, 4, 8, 12, 12, 2; past 25 frames the window no longer reaches the start, and the
    causal decoder's far context is what a seam can lose (nothing measurable on the tiny checkpoint)."""
    prompt = prompts[0] if mode == "icl" else prompts[1]
    greedy = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=41)
    (whole,), rate = fast.generate_voice_clone(TEXTS[0], "english", [prompt], **greedy)
    chunks = list(fast.stream_voice_clone(TEXTS[0], "english", prompt, **greedy))
    assert rate == 24_000
    assert [c.shape[0] // SAMPLES_PER_FRAME for c in chunks] == [2, 4, 8, 12, 12, 2]
    streamed = np.concatenate(chunks)
    assert streamed.shape == whole.shape == (40 * SAMPLES_PER_FRAME,)
    np.testing.assert_allclose(streamed, whole, atol=1e-4)


def test_stream_stops_at_eos(fast, prompts, monkeypatch):  # noqa: F811
    """A row that emits EOS ends the stream with the frames before it (EOS forced via the decoder's id)."""
    from backend.engine.fast import trim_at_eos

    greedy = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=21)
    codes = fast.generate_codes(TEXTS[0], "english", [prompts[1]], **greedy)[0]
    # Call a first code EOS whose first use is late enough (frame >= 2) that banning EOS before
    # `min_new_tokens` changes nothing before it.
    firsts = {int(code): frame for frame, code in reversed(list(enumerate(codes[:, 0])))}
    eos = next(code for code, frame in sorted(firsts.items(), key=lambda item: item[1]) if frame >= 2)
    expected = trim_at_eos(codes[None], eos)[0].shape[0]
    assert 2 <= expected < 20
    monkeypatch.setattr(fast.tts.model.config.talker_config, "codec_eos_token_id", eos)
    chunks = list(fast.stream_voice_clone(TEXTS[0], "english", prompts[1], **greedy))
    assert sum(c.shape[0] for c in chunks) == expected * SAMPLES_PER_FRAME
