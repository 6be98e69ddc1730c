"""qwen-tts imported without what serving never runs: a cold container's imports come before every request.

- transformers imports scikit-learn (about 2 s, a tenth of a cold start's imports) only for assisted generation's
  ROC threshold; it checks availability once, so saying "unavailable" before its generation module loads skips it.
- qwen-tts imports both speech tokenizers at package import. The served checkpoints use the 12 Hz one; the 25 Hz
  one pulls in onnxruntime, torchaudio and SoX (and prints a flash-attn warning) for a model nobody loads. Its
  module is stood in for by `_Deferred25HzModule` until a 25 Hz tokenizer is really loaded, which then imports
  the real module and runs it: deferred, not removed.

Both only work before qwen-tts (or transformers' generation module) is first imported: `Engine.load` calls
`import_qwen_tts` first, and so does `backend.engine.fast` (its layers import qwen-tts).
"""

from __future__ import annotations

import importlib
import sys
import types

TOKENIZER_25HZ = "qwen_tts.core.tokenizer_25hz.modeling_qwen3_tts_tokenizer_v1"
CONFIG_25HZ = "qwen_tts.core.tokenizer_25hz.configuration_qwen3_tts_tokenizer_v1"


def import_qwen_tts() -> type:
    """qwen-tts's model class, imported without scikit-learn and with the 25 Hz tokenizer deferred."""
    from transformers.utils import import_utils

    import_utils._sklearn_available = False
    sys.modules.setdefault(TOKENIZER_25HZ, _Deferred25HzModule(TOKENIZER_25HZ))
    from qwen_tts import Qwen3TTSModel

    return Qwen3TTSModel


def _real_25hz_module() -> types.ModuleType:
    """Replace the stand-in with the real module (importing onnxruntime, torchaudio, SoX now)."""
    if isinstance(sys.modules.get(TOKENIZER_25HZ), _Deferred25HzModule):
        del sys.modules[TOKENIZER_25HZ]
    return importlib.import_module(TOKENIZER_25HZ)


class _Deferred25HzModule(types.ModuleType):
    """Stands in for the 25 Hz tokenizer's module. qwen-tts only imports its model class and registers it with
    transformers' `AutoModel` (which checks its `config_class`); loading one goes through `from_pretrained` or
    `_from_config`, which get the real class. Any other public name imports the real module at once."""

    def __getattr__(self, name: str):
        if name.startswith("__"):  # the import system probing (`__path__`: is it a package?)
            raise AttributeError(name)
        if name != "Qwen3TTSTokenizerV1Model":
            return getattr(_real_25hz_module(), name)
        config = importlib.import_module(CONFIG_25HZ).Qwen3TTSTokenizerV1Config

        def real() -> type:
            return _real_25hz_module().Qwen3TTSTokenizerV1Model

        deferred = type(name, (), {
            "__doc__": "The 25 Hz tokenizer model, imported when first loaded.",
            "__module__": TOKENIZER_25HZ, "config_class": config,
            "from_pretrained": classmethod(lambda cls, *a, **k: real().from_pretrained(*a, **k)),
            "_from_config": classmethod(lambda cls, *a, **k: real()._from_config(*a, **k)),
        })
        setattr(self, name, deferred)
        return deferred
