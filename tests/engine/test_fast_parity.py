"""The fast decode loop (run eagerly on the CPU, as CI can) picks the same codec tokens as stock qwen-tts."""

from __future__ import annotations

import pytest
import torch

from tests.engine.fast_fixtures import TEXTS, fast, prompts, tts  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow
FRAMES = 12
GREEDY = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=FRAMES + 1)


def stock_codes(tts, texts, languages, items, **gen):  # noqa: F811
    """What stock `generate_voice_clone` decodes: `model.generate`'s codes, built with its own helpers."""
    return tts.model.generate(
        input_ids=tts._tokenize_texts([tts._build_assistant_text(t) for t in texts]),
        ref_ids=[tts._tokenize_texts([tts._build_ref_text(p.ref_text)])[0] if p.ref_text else None for p in items],
        voice_clone_prompt=tts._prompt_items_to_voice_clone_prompt(items), languages=languages,
        non_streaming_mode=False, **tts._merge_generate_kwargs(**gen),
    )[0]


def test_greedy_batch_matches_stock(tts, fast, prompts):  # noqa: F811
    """Three texts of different lengths (left padding, a padded batch bucket of 4), ICL and x-vector prompts."""
    icl, xvector = prompts
    items, languages = [icl, xvector, icl], ["english", "auto", "german"]
    expected = stock_codes(tts, TEXTS, languages, items, **GREEDY)
    got = fast.generate_codes(TEXTS, languages, items, **GREEDY)
    assert [c.shape for c in got] == [(FRAMES, 16)] * 3
    for want, have in zip(expected, got):
        assert torch.equal(want, have)


def test_greedy_keeps_the_repetition_penalty_and_ignores_sampler_knobs(tts, fast, prompts):  # noqa: F811
    gen = dict(GREEDY, temperature=0.5, top_k=7, subtalker_temperature=1.3, subtalker_top_k=3, repetition_penalty=1.3)
    expected = stock_codes(tts, TEXTS[:1], ["english"], [prompts[0]], **gen)
    assert torch.equal(fast.generate_codes(TEXTS[:1], ["english"], [prompts[0]], **gen)[0], expected[0])


def test_seeded_sampling_is_reproducible(fast, prompts):  # noqa: F811
    gen = dict(max_new_tokens=FRAMES + 1, top_k=20, top_p=0.9)

    def run(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        return fast.generate_codes(TEXTS[:2], "english", [prompts[0]], **gen)

    first, again, other = run(7), run(7), run(8)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_trim_at_eos_cuts_each_row_at_its_first_eos():
    from backend.engine.fast import trim_at_eos

    codes = torch.zeros(3, 5, 16, dtype=torch.long)
    codes[0, 2, 0] = codes[0, 4, 0] = 99
    codes[2, 0, 0] = 99
    assert [c.shape[0] for c in trim_at_eos(codes, 99)] == [2, 5, 0]
