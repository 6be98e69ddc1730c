"""The chunked prompt prefill (`backend/engine/fast/prefill.py`) gives what the stock talker forward gives: the
same K/V, first-token logits and last hidden state, for prompts shorter than a chunk, of exactly one chunk and
spanning several (CPU float32, the tiny checkpoint). The continuous batch's greedy parity with stock
(`test_fast_continuous.py`) runs through it too."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from backend.engine.fast import FastTTS
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


def _prompt(fast, tokens: int) -> TalkerInputs:  # noqa: F811 - a FastTTS, not the fixture
    hidden = fast.decoder.talker.model.config.hidden_size
    generator = torch.Generator().manual_seed(tokens)
    return TalkerInputs(torch.randn(1, tokens, hidden, generator=generator) * 0.1,
                        torch.ones(1, tokens, dtype=torch.long), torch.randn(1, 4, hidden, generator=generator),
                        torch.zeros(1, 1, hidden))


def test_capturing_leaves_the_prefill_s_buffers_alone_and_a_prompt_without_a_graph_runs_eagerly(tts):  # noqa: F811
    """CUDA graphs stood in for on the CPU (a recording executes nothing; a replay runs the recorded step): the
    background captures while a prompt may be mid-prefill, so warming up must not write the buffers a prefill uses;
    a prompt whose cache length has no graph yet prefills eagerly instead of capturing, with the same result."""
    fast = FastTTS(tts, max_batch=1, max_len=512)  # its own: graphs are forced on below
    prefill = fast.decoder.stager.prefill
    prefill.use_graphs = True
    captured, replayed = [], []

    def stand_in_capture(step, *, warm_up=None):
        before = [tensor.clone() for tensor in (prefill.buffers.hidden_in, prefill.buffers.hidden_out,
                                                *prefill.buffers.cache)]
        for _ in range(2):
            (warm_up or step)()
        after = (prefill.buffers.hidden_in, prefill.buffers.hidden_out, *prefill.buffers.cache)
        assert all(torch.equal(old, new) for old, new in zip(before, after, strict=True)), "warm-up wrote them"
        captured.append(len(captured))
        return SimpleNamespace(replay=lambda: replayed.append(1) or step()), None

    prefill._family.capture = stand_in_capture
    short, long = _prompt(fast, 5), _prompt(fast, 4 * CHUNK + 3)  # cache lengths 256 and 512 (see `_bucket`)
    with torch.inference_mode():
        prefill.buffers.cache[0].normal_()  # a prefill's K/V in place, which a warm-up must not touch
        prefill.capture((5,))
        assert sorted(prefill._graphs) == [prefill.buckets[0]] and captured == [0]
        eager = prefill.run(long)
        assert replayed == []  # no graph for its length: eager, nothing captured on its way
        prefill.capture()
        assert sorted(prefill._graphs) == list(prefill.buckets)
        graphed = prefill.run(long)
        assert replayed and prefill.run(short) is not None
    for have, want in [*zip(graphed.keys, eager.keys), *zip(graphed.values, eager.values)]:
        torch.testing.assert_close(have, want)
    torch.testing.assert_close(graphed.logits, eager.logits)
