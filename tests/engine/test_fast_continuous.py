"""Continuous batching on the CPU: rows that join a running decode and rows that leave it early each get exactly
the codes they get alone (greedy: stock qwen-tts's; seeded sampling: their own seed's)."""

from __future__ import annotations

import threading

import pytest
import torch

from tests.engine.fast_fixtures import TEXTS, fast, prompts, tts  # noqa: F401  (fixtures)
from tests.engine.test_fast_parity import stock_codes

pytestmark = pytest.mark.slow
GREEDY = dict(do_sample=False, subtalker_dosample=False)


def run_with_company(fast, first, company, *, after: int):  # noqa: F811
    """Submit `first`; once it has done `after` frames, submit `company` from inside the loop, so they join at
    the next frame boundary. Every item is (text, prompt, kwargs). Returns each one's codes, in order."""
    jobs, submitted = [], threading.Event()

    def on_frame(done: int) -> None:
        if done == after and not submitted.is_set():
            submitted.set()
            jobs.extend(fast.submit(text, "english", prompt, **kwargs) for text, prompt, kwargs in company)

    text, prompt, kwargs = first
    lead = fast.submit(text, "english", prompt, on_frame=on_frame, **kwargs)
    codes = [lead.future.result(timeout=300)]
    assert submitted.wait(timeout=1)
    return codes + [job.future.result(timeout=300) for job in jobs]


def test_rows_joining_and_leaving_keep_stock_greedy_codes(tts, fast, prompts):  # noqa: F811
    """A long row; three join after 3 frames (one leaves after 4 frames, one after 8), and a row from the queue
    takes the freed slot: the batch moves between buckets 1, 4 and 2, and every row's codes are its alone codes."""
    icl, xvector = prompts
    requests = [(TEXTS[1], icl, dict(GREEDY, max_new_tokens=21)),
                (TEXTS[0], xvector, dict(GREEDY, max_new_tokens=5)),
                (TEXTS[2], icl, dict(GREEDY, max_new_tokens=13)),
                (TEXTS[0], icl, dict(GREEDY, max_new_tokens=9)),
                (TEXTS[2], xvector, dict(GREEDY, max_new_tokens=7))]  # waits: the batch holds 4
    before = fast.batch.stats()
    got = run_with_company(fast, requests[0], requests[1:], after=3)
    after = fast.batch.stats()
    assert after.joins - before.joins == len(requests)
    assert after.frames - before.frames >= sum(len(codes) for codes in got)  # EOS rows wait for the next look
    assert after.steps - before.steps < after.frames - before.frames  # rows shared steps
    for (text, prompt, kwargs), have in zip(requests, got, strict=True):
        want = stock_codes(tts, [text], ["english"], [prompt], **kwargs)[0]
        assert have.shape == (kwargs["max_new_tokens"] - 1, 16)
        assert torch.equal(want, have)


def test_a_seed_samples_the_same_codes_in_any_company(fast, prompts):  # noqa: F811
    sampled = dict(max_new_tokens=11, top_k=20, top_p=0.9)
    alone = fast.submit(TEXTS[0], "english", prompts[0], seed=7, **sampled).future.result(timeout=300)
    company = [(TEXTS[1], prompts[1], dict(sampled, seed=None)), (TEXTS[0], prompts[0], dict(sampled, seed=7))]
    lead, *others = run_with_company(fast, (TEXTS[2], prompts[0], dict(sampled, seed=3)), company, after=2)
    assert torch.equal(others[1], alone)
    other_seed = fast.submit(TEXTS[0], "english", prompts[0], seed=8, **sampled).future.result(timeout=300)
    assert not torch.equal(other_seed, alone)


def test_a_failing_callback_fails_its_own_request_only(fast, prompts):  # noqa: F811
    def broken(codes) -> None:
        raise RuntimeError("consumer gone")

    bad = fast.submit(TEXTS[2], "english", prompts[0], chunks=(2,), on_chunk=broken, **GREEDY, max_new_tokens=9)
    good = fast.submit(TEXTS[2], "english", prompts[0], **GREEDY, max_new_tokens=9)
    with pytest.raises(RuntimeError, match="consumer gone"):
        bad.future.result(timeout=300)
    assert good.future.result(timeout=300).shape == (8, 16)
    assert (fast.batch.stats().active, fast.batch.stats().waiting) == (0, 0)


def test_a_cancelled_request_leaves_at_the_next_frame_and_frees_its_slot(fast, prompts):  # noqa: F811
    from concurrent.futures import CancelledError

    jobs = []

    def cancel_at(done: int) -> None:
        if done == 2:
            jobs[0].cancel()

    jobs.append(fast.submit(TEXTS[0], "english", prompts[0], on_frame=cancel_at, **GREEDY, max_new_tokens=200))
    with pytest.raises(CancelledError):
        jobs[0].future.result(timeout=300)
    assert jobs[0].done < 10 and (fast.batch.stats().active, fast.batch.stats().waiting) == (0, 0)
    assert fast.decoder.rows_in_use == 0


def test_a_row_whose_logits_turn_non_finite_ends_with_valid_codes_only(fast, prompts):  # noqa: F811
    """NaN logits defeat the sampler's bans, so a row could draw a special token and hand the speech decoder an
    index past its codebook (on CUDA a device-side assert for the whole process). The row ends instead, after a
    few frames, and every code it handed on is a codec code; a neighbour is untouched."""
    head = fast.decoder.talker.codec_head
    original = head.weight.detach().clone()
    codec_codes = fast.decoder.vocab - 1024  # the ids past these are specials (EOS, pad, ...)
    healthy = fast.submit(TEXTS[1], "english", prompts[0], seed=5, max_new_tokens=12)

    def poison(done: int) -> None:
        if done == 3:
            with torch.no_grad():
                head.weight[codec_codes:] = float("nan")  # the specials' logits NaN, the codec codes' finite

    try:
        broken = fast.submit(TEXTS[0], "english", prompts[0], seed=6, max_new_tokens=40, on_frame=poison)
        codes = broken.future.result(timeout=300)
    finally:
        with torch.no_grad():
            head.weight.copy_(original)
    assert codes.shape[0] < 39 and int(codes.max()) < codec_codes
    assert healthy.future.result(timeout=300).shape[0] > 0
