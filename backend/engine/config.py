"""How an engine instance is built: which checkpoint, attention, dtype, device and limits."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from backend.intake import AudioLimits
from backend.validation import DEFAULT_MAX_TEXT_CHARS

Attention = Literal["flash_attention_2", "sdpa", "eager"]
EngineMode = Literal["stock", "fast", "auto"]
DEFAULT_MODEL = "Qwen/Qwen3-TTS-12Hz-1.7B-Base"


class EngineConfig(BaseModel):
    """Everything `Engine.load()` needs; the Modal variants and the local backend each build one."""

    model: str = Field(default=DEFAULT_MODEL, description="Local checkpoint directory or Hugging Face hub id")
    variant: str = "local"
    attention: Attention = "sdpa"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device: str = "auto"
    voice_cache_size: int = Field(default=64, ge=1)
    # "fast": backend.engine.fast (static caches, CUDA graphs; on a CPU the same loop without graphs);
    # "auto": fast on CUDA, stock elsewhere. Health and results report the mode that really runs.
    engine_mode: EngineMode = "auto"
    fast_max_batch: int = Field(default=16, ge=1, description="Largest batch one fast generation takes")
    # When the fast engine captures its CUDA graphs: "background" (two-stage, what serving uses) batch 1 at
    # `fast_ready_lengths` as graphs of the uncompiled frame at load (no Inductor: under a second each), then on a
    # thread (`Engine.load`, or `start_background_capture()` after a snapshot) while requests are served:
    # uncompiled graphs of the other shapes, then every shape compiled, its compiled graph replacing the
    # uncompiled one, so no request ever waits for a compile; "lazy" batch 1 at those lengths compiled at load,
    # any other shape compiled inside the first generation that needs it (one H200: 15-30 s during which every
    # request in the batch waits); "all" every shape compiled at load.
    fast_capture: Literal["lazy", "background", "all"] = "background"
    # Prompt + frames (cache slots) of the requests batch 1 is captured for before serving: 256 holds a ~30
    # character text behind a short clip, 768 ~100 characters behind a 10 s clip.
    fast_ready_lengths: tuple[int, ...] = (256, 512, 768)
    compile_cache_dir: str | None = Field(default=None, description="Folder for torch.compile's artifacts (fast "
                                          "engine on CUDA): loaded at start, saved once compiled")
    fast_prompt_slots: int = Field(default=512, ge=64, description="Fast KV-cache room for the prompt, in tokens")
    # Frame budget: 12.5 frames per audio second. 4 frames per character covers slow speech (Chinese runs
    # ~3 frames/char); the cap (~164 s) stops a missing EOS from generating forever.
    base_frames: int = 75
    frames_per_char: float = 4.0
    max_new_tokens_cap: int = 2048
    # Frames generated are reported at most this often (each report ends as a chat message edit).
    progress_interval_s: float = Field(default=0.5, ge=0)
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    audio_limits: AudioLimits = Field(default_factory=AudioLimits)

    def frame_budget(self, text: str) -> int:
        """`max_new_tokens` for a text: proportional to its length, never above the hard cap."""
        return min(self.max_new_tokens_cap, self.base_frames + int(len(text) * self.frames_per_char))
