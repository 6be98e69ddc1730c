"""The fast engine mode: qwen-tts's own modules and weights driven by a static-cache, CUDA-graph decode loop."""

from backend.engine.qwen_imports import import_qwen_tts

import_qwen_tts()  # first: the layers import qwen-tts, which must come without what serving never runs

from backend.engine.fast.decoder import FastDecoder, trim_at_eos  # noqa: E402
from backend.engine.fast.sampling import DecodeSettings, SamplingConfig  # noqa: E402
from backend.engine.fast.staging import TalkerInputs  # noqa: E402
from backend.engine.fast.tts import FastTTS  # noqa: E402

__all__ = ["DecodeSettings", "FastDecoder", "FastTTS", "SamplingConfig", "TalkerInputs", "trim_at_eos"]
