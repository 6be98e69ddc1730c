"""The Qwen3-TTS engine: imports torch and qwen-tts, so only backend processes import this package."""

from backend.engine.config import EngineConfig
from backend.engine.engine import Engine

__all__ = ["Engine", "EngineConfig"]
