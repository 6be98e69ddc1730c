"""Serving imports qwen-tts without the 25 Hz tokenizer's dependencies, and a 25 Hz tokenizer still loads.

In a fresh interpreter: whether a module was imported depends on everything the process imported before."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

CHECK = textwrap.dedent("""
    import sys
    import backend.engine.fast  # imports qwen-tts's layers before `Engine.load` imports qwen-tts
    from backend.engine.qwen_imports import TOKENIZER_25HZ, import_qwen_tts

    import_qwen_tts()
    heavy = ("onnxruntime", "torchaudio", "sox", "sklearn")
    print("imported at start:", [name for name in heavy if name in sys.modules])

    from qwen_tts.core import Qwen3TTSTokenizerV1Config, Qwen3TTSTokenizerV1Model
    from transformers import AutoModel
    AutoModel.register(Qwen3TTSTokenizerV1Config, Qwen3TTSTokenizerV1Model, exist_ok=True)  # as qwen-tts does
    try:
        Qwen3TTSTokenizerV1Model.from_pretrained(__import__("tempfile").mkdtemp())  # an empty folder
    except OSError as error:
        print("loading reached transformers:", type(error).__name__)
    real = sys.modules[TOKENIZER_25HZ].Qwen3TTSTokenizerV1Model
    print("real class:", real.__module__, issubclass(real, __import__("torch").nn.Module))
    print("imported after loading:", [name for name in heavy if name in sys.modules])
""")


def test_the_25hz_tokenizer_is_imported_only_when_one_is_loaded():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "imported at start: []" in lines
    assert "loading reached transformers: OSError" in lines
    assert "real class: qwen_tts.core.tokenizer_25hz.modeling_qwen3_tts_tokenizer_v1 True" in lines
    assert "imported after loading: ['onnxruntime', 'torchaudio', 'sox']" in lines
