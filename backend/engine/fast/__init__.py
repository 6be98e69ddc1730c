"""The fast engine mode: qwen-tts's own modules and weights driven by a static-cache, CUDA-graph decode loop."""

from backend.engine.fast.decoder import DecodeSettings, FastDecoder, TalkerInputs, trim_at_eos
from backend.engine.fast.sampling import SamplingConfig
from backend.engine.fast.tts import FastTTS

__all__ = ["DecodeSettings", "FastDecoder", "FastTTS", "SamplingConfig", "TalkerInputs", "trim_at_eos"]
