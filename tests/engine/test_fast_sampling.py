"""The graph-safe sampler follows transformers' processors where the outcome is deterministic."""

from __future__ import annotations

import torch

from backend.engine.fast.sampling import SamplerSlots, SamplingConfig, choose_tokens


def slots(rows: int, config: SamplingConfig, vocab: int) -> SamplerSlots:
    result = SamplerSlots(rows, torch.device("cpu"))
    result.fill(config, vocab)
    return result


def test_greedy_applies_penalty_and_bans_like_transformers():
    from transformers.generation.logits_process import RepetitionPenaltyLogitsProcessor

    torch.manual_seed(0)
    logits = torch.randn(4, 50)
    history = torch.randint(0, 50, (4, 6))
    seen = torch.zeros(4, 50, dtype=torch.bool).scatter_(1, history, True)
    ban = torch.zeros(50)
    ban[40:] = float("-inf")
    expected = RepetitionPenaltyLogitsProcessor(1.7)(history, logits.clone())
    expected[:, 40:] = float("-inf")
    got = choose_tokens(logits, slots(4, SamplingConfig(do_sample=False, repetition_penalty=1.7), 50), 4,
                        ban=ban, seen=seen)
    assert torch.equal(got, expected.argmax(-1))


def test_top_k_one_and_tiny_top_p_sample_the_argmax():
    torch.manual_seed(1)
    logits = torch.randn(8, 100)
    for config in (SamplingConfig(top_k=1, top_p=1.0), SamplingConfig(top_k=0, top_p=1e-6)):
        assert torch.equal(choose_tokens(logits, slots(8, config, 100), 8), logits.argmax(-1))


def test_sampling_stays_inside_top_k():
    torch.manual_seed(2)
    logits = torch.randn(2, 100)
    allowed = logits.topk(5, dim=-1).indices
    draws = torch.stack([choose_tokens(logits, slots(2, SamplingConfig(top_k=5, temperature=2.0), 100), 2)
                         for _ in range(200)], dim=1)
    assert all(set(row.tolist()) <= set(keep.tolist()) for row, keep in zip(draws, allowed))
    assert all(len(set(row.tolist())) > 1 for row in draws)


def test_a_row_with_non_finite_logits_ends_instead_of_drawing_a_banned_token():
    """NaN defeats an additive -inf ban, so such a row can draw a special token; `banned_choice` flags it (the
    decode frame then finishes the row and feeds the filler)."""
    from backend.engine.fast.sampling import banned_choice

    vocab = 3072
    slots = SamplerSlots(3, torch.device("cpu"))
    slots.fill(SamplingConfig(), vocab)
    ban = torch.zeros(3, vocab)
    ban[:, 2048:] = float("-inf")
    logits = torch.randn(3, vocab)
    logits[1] = float("nan")
    chosen = choose_tokens(logits, slots, 3, ban=ban, noise=torch.ones(3, vocab))
    flagged = banned_choice(ban, chosen)
    assert not flagged[0] and not flagged[2]
    assert bool(flagged[1]) == (int(chosen[1]) >= 2048)
    forced = torch.tensor([5, 2150, 7])
    assert banned_choice(ban, forced).tolist() == [False, True, False]
