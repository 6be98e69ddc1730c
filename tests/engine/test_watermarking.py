"""The engine marks every clip before it leaves, checks clips without its TTS model, and forgets voice prompts
by the digest of the clip bytes a bot sent (forget-me)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from backend.audio import to_wav
from backend.engine import Engine, EngineConfig
from backend.schema import CloneRequest
from backend.watermark import Watermarker
from tests.backend import speech_like
from tests.clips import encode, sine_clip

pytestmark = pytest.mark.slow


class RecordingWatermarker(Watermarker):
    """The real watermarker, remembering what it was given and what it made (a spy, not a fake)."""

    def __init__(self) -> None:
        super().__init__("cpu")
        self.marked: list[tuple[np.ndarray, np.ndarray]] = []

    def mark(self, samples, sample_rate=24_000):
        result = super().mark(samples, sample_rate)
        self.marked.append((np.array(samples), result))
        return result


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_clip_of_a_batch_is_marked_on_its_way_out(engine, monkeypatch):
    spy = RecordingWatermarker()
    monkeypatch.setattr(engine, "_watermarker", spy)
    requests = [CloneRequest(reference=sine_clip(), text=text, max_new_tokens=12) for text in ("One.", "Two.")]
    results = engine.clone_batch(requests)
    assert len(spy.marked) == len(results) == 2
    for result, (raw, marked) in zip(results, spy.marked, strict=True):
        assert result.audio == to_wav(marked, 24_000) != to_wav(raw, 24_000)
        assert result.timings.total_s >= result.timings.watermark_s > 0


def test_a_check_loads_no_tts_model():
    engine = Engine(EngineConfig(model="/nonexistent/checkpoint", device="cpu"))
    assert engine.check_watermark(speech_like(marked=True)).watermarked
    assert not engine.check_watermark(speech_like(marked=False)).watermarked
    assert engine.tts is None


def test_forget_voices_drops_the_prompts_made_from_those_clips(engine):
    # Amplitudes no other test uses: the session's engine is shared, and a prompt another test made from the same
    # clip (with a transcript, say) would rightly be forgotten too, changing the counts.
    wav = sine_clip(seconds=2.5, sample_rate=16_000, amplitude=0.271)
    pcm, rate = sf.read(io.BytesIO(wav), dtype="int16")
    flac = encode(pcm, rate, format="FLAC")  # the same samples in other bytes
    other = sine_clip(seconds=2.0, sample_rate=16_000, amplitude=0.229)

    def clone(reference: bytes) -> bool:
        return engine.clone(CloneRequest(reference=reference, text="Hi.", max_new_tokens=4)).voice_cached

    clone(wav), clone(other)
    assert clone(flac)  # the FLAC hits the WAV's prompt: forgetting either upload must drop it
    assert engine.forget_voices([sha256(flac)]) == 1
    assert engine.forget_voices([sha256(wav), sha256(flac)]) == 0
    assert not clone(wav) and clone(other)
    assert engine.forget_voices([sha256(wav), "0" * 64]) == 1
    assert not clone(wav)



def test_loading_pays_for_the_first_marks_imports_not_the_first_clip():
    """The first mark imports librosa's helpers and numba-compiles them (seconds, holding the GIL): a fresh process
    has them imported once the watermarker is loaded, before any clip is marked."""
    script = ("import sys; from backend.watermark import Watermarker; assert 'librosa.util.utils' not in sys.modules; "
              "Watermarker().load(); print('librosa.util.utils' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "True"


def _engine_whose_watermarker_loads(tiny_checkpoint, monkeypatch, load) -> Engine:
    from backend.engine import engine as engine_module

    class Spied(Watermarker):
        def load(self) -> None:
            load()
            super().load()

    monkeypatch.setattr(engine_module, "shared_watermarker", lambda device: Spied(device))
    return Engine(EngineConfig(model=str(tiny_checkpoint), variant="test", device="cpu"))


def test_the_watermarker_loads_beside_the_model(tiny_checkpoint, monkeypatch):
    """Its load overlaps the weights' (seconds of a container's start): it can wait for the model to be read, which
    a load before or after the model's could not; it is done when `load` returns, on a thread that is gone."""
    model_read, threads = threading.Event(), []
    original = Engine._time_decode  # runs right after the weights are read

    def after_weights(self) -> None:
        model_read.set()
        original(self)

    def waiting_for_the_model() -> None:
        threads.append(threading.current_thread().name)
        assert model_read.wait(timeout=60), "the watermarker loaded before the model, not beside it"

    monkeypatch.setattr(Engine, "_time_decode", after_weights)
    engine = _engine_whose_watermarker_loads(tiny_checkpoint, monkeypatch, waiting_for_the_model)
    engine.load()
    assert threads and threads[0] != threading.current_thread().name
    assert engine._watermarker._perth is not None
    assert not any(thread.name == threads[0] for thread in threading.enumerate())


def test_a_watermarker_that_cannot_load_stops_the_engine_load(tiny_checkpoint, monkeypatch):
    engine = _engine_whose_watermarker_loads(tiny_checkpoint, monkeypatch, lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        engine.load()
    assert not engine._loaded
