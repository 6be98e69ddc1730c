"""The chunked prompt prefill (`backend/engine/fast/prefill.py`) gives what the stock talker forward gives: the
same K/V, first-token logits and last hidden state, for prompts shorter than a chunk, of exactly one chunk and
spanning several (CPU float32, the tiny checkpoint). The continuous batch's greedy parity with stock
(`test_fast_continuous.py`) runs through it too."""

from __future__ import annotations

import pytest
import torch

from backend.engine.fast.prefill import CHUNK
from backend.engine.fast.staging import TalkerInputs
from tests.engine.fast_fixtures import fast, tts  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("tokens", [2, 5, CHUNK, CHUNK + 1, 3 * CHUNK - 7])  # stock takes 1 token as a decode step
def test_chunked_prefill_matches_the_stock_forward(fast, tokens):  # noqa: F811
    decoder = fast.decoder
    hidden = decoder.talker.model.config.hidden_size
    generator = torch.Generator().manual_seed(tokens)
    inputs = TalkerInputs(torch.randn(1, tokens, hidden, generator=generator) * 0.1,
                          torch.ones(1, tokens, dtype=torch.long), torch.randn(1, 4, hidden, generator=generator),
                          torch.zeros(1, 1, hidden))
    with torch.inference_mode():
        stock = decoder.stager._forward(inputs)
        assert decoder.stager.prefill.fits(inputs)
        chunked = decoder.stager.prefill.run(inputs)
    for have, want in [*zip(chunked.keys, stock.keys), *zip(chunked.values, stock.values)]:
        assert have.shape == want.shape
        torch.testing.assert_close(have, want, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(chunked.logits, stock.logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(chunked.past_hidden, stock.past_hidden, atol=1e-4, rtol=1e-4)


def test_a_padded_batch_takes_the_stock_forward(fast):  # noqa: F811
    hidden = fast.decoder.talker.model.config.hidden_size
    padded = TalkerInputs(torch.zeros(2, 6, hidden), torch.tensor([[0, 0, 1, 1, 1, 1], [1] * 6]),
                          torch.zeros(2, 4, hidden), torch.zeros(1, 1, hidden))
    assert not fast.decoder.stager.prefill.fits(padded)
