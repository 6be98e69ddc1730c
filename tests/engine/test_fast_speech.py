"""The fast engine's speech decoding (`backend/engine/fast/speech.py`) gives stock qwen-tts's audio: its windows
are stock's, and padding each on the right to a fixed length changes nothing before the padding (the decoder is
causal). CPU float32, the tiny checkpoint: one window, several windows, and the edges between them."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from backend.engine.fast.speech import CHUNK_FRAMES, SHORT_ROWS, WINDOW_FRAMES, SpeechDecoder

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


def _windows(*lengths: int) -> list[torch.Tensor]:
    return [torch.randint(0, 2048, (n, 16), generator=torch.Generator().manual_seed(n)) for n in lengths]


def test_short_windows_in_one_batch_each_decode_as_alone(tokenizer):
    """Rows of one batch (right-padded to the window length) do not leak into each other."""
    windows = _windows(1, 5, 27, 37, WINDOW_FRAMES[0])
    speech = SpeechDecoder(tokenizer, use_graphs=False)
    for codes, have in zip(windows, speech._short._decode_rows(windows), strict=True):
        (want,), _ = tokenizer.decode([{"audio_codes": codes}])
        assert have.shape == want.shape
        np.testing.assert_allclose(have, want, atol=1e-5)


def test_concurrent_short_decodes_are_batched_and_each_caller_gets_its_own_audio(tokenizer, monkeypatch):
    """Callers arriving while a batch decodes go together in the next one; nobody gets another's audio."""
    speech = SpeechDecoder(tokenizer, use_graphs=False)
    short = speech._short
    windows = _windows(*range(3, 15))
    sizes, first_started, release = [], threading.Event(), threading.Event()
    decode_rows = short._decode_rows

    def spied(batch):
        sizes.append(len(batch))
        if len(sizes) == 1:  # hold the first batch until every other caller has queued
            first_started.set()
            assert release.wait(timeout=60)
        return decode_rows(batch)

    monkeypatch.setattr(short, "_decode_rows", spied)
    results: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, speech.decode(windows[i])))
               for i in range(len(windows))]
    threads[0].start()
    assert first_started.wait(timeout=60)
    for thread in threads[1:]:
        thread.start()
    while len(short._queue) < len(windows) - 1:
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(timeout=120)
    assert sizes == [1, len(windows) - 1]
    for i, codes in enumerate(windows):
        np.testing.assert_allclose(results[i], speech._short._decode_rows([codes])[0], atol=1e-6)


def test_a_failed_short_batch_fails_its_callers_and_the_next_caller_decodes(tokenizer, monkeypatch):
    speech = SpeechDecoder(tokenizer, use_graphs=False)
    decode_rows = speech._short._decode_rows
    monkeypatch.setattr(speech._short, "_decode_rows", lambda batch: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        speech.decode(_windows(4)[0])
    monkeypatch.setattr(speech._short, "_decode_rows", decode_rows)
    assert speech.decode(_windows(4)[0]).shape == (4 * speech.upsample,)


def test_codes_past_the_codebook_are_refused_before_the_gpu_sees_them(tokenizer):
    """A special token as a code (e.g. EOS, 2,150) would index past the codebook: on CUDA a device-side assert
    that ends every request of the process. It is a ValueError of the one request instead."""
    speech = SpeechDecoder(tokenizer, use_graphs=False)
    codes = torch.zeros(12, 16, dtype=torch.long)
    codes[5, 0] = speech.codebook + 102
    with pytest.raises(ValueError, match="past the speech codebook"):
        speech.decode(codes)


class _StandInGraphs:
    """CUDA graphs on the CPU: capturing runs the step once for its output buffer, a replay reruns it into that
    buffer (what a real replay does); records what was captured and replayed, by family."""

    def __init__(self, speech: SpeechDecoder) -> None:
        self.captured: list[tuple[str, int]] = []
        self.replayed: list[tuple[str, int]] = []
        speech.use_graphs = speech._short.use_graphs = True
        self.upsample = speech.upsample
        speech._family.capture = lambda step: self._capture("window", step)
        speech._short._family.capture = lambda step: self._capture("rows", step)

    def _capture(self, family: str, step) -> tuple[SimpleNamespace, torch.Tensor]:
        out = step()  # (rows, 1, frames * upsample)
        key = (family, out.shape[0] if family == "rows" else out.shape[-1] // self.upsample)
        self.captured.append(key)

        def replay() -> None:
            self.replayed.append(key)
            out.copy_(step())

        return SimpleNamespace(replay=replay), out


def test_before_serving_only_a_lone_request_s_graphs_are_captured_and_a_decode_never_captures(tokenizer):
    """`capture_first` captures a stream chunk's graph (one short row) and the largest window's; a window not
    captured yet decodes eagerly (a request does not wait for a capture); `capture` adds the rest once, after
    which every length replays a graph, with stock's audio either way."""
    speech = SpeechDecoder(tokenizer, use_graphs=False)
    graphs = _StandInGraphs(speech)
    speech.capture_first()
    assert graphs.captured == [("window", WINDOW_FRAMES[-1]), ("rows", 1)]

    short, middle, whole = _windows(12, WINDOW_FRAMES[1] + 3, CHUNK_FRAMES - 50)
    for codes in (short, middle, whole):
        (want,), _ = tokenizer.decode([{"audio_codes": codes}])
        np.testing.assert_allclose(speech.decode(codes), want, atol=1e-5)
    assert graphs.captured == [("window", WINDOW_FRAMES[-1]), ("rows", 1)]  # the middle length ran eagerly
    assert graphs.replayed == [("rows", 1), ("window", WINDOW_FRAMES[-1])]

    speech.capture()
    speech.capture()
    assert sorted(graphs.captured) == sorted([("window", n) for n in WINDOW_FRAMES] + [("rows", n) for n in SHORT_ROWS])
    graphs.replayed.clear()
    (want,), _ = tokenizer.decode([{"audio_codes": middle}])
    np.testing.assert_allclose(speech.decode(middle), want, atol=1e-5)
    assert graphs.replayed == [("window", WINDOW_FRAMES[2])]
