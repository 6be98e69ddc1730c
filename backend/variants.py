"""The deployable Modal variants as plain data.

`backend.modal_app` builds one Modal class per entry; `backend.clients.modal_client` looks the class names up
here, so a bot process can call a variant without importing the Modal app (or its image definitions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

APP_NAME = "voicebot-tts"
MODELS_VOLUME = "qwen3-tts-models"
MODELS_DIR = "/models"  # where the volume is mounted in every container
# The voices saved through the OpenAI-compatible API (`backend.voice_catalog`): user data, on a volume of its own
# so it can be reloaded while the model's files are open (a volume with open files cannot be) and wiped apart.
VOICES_VOLUME = "voicebot-voices"
VOICES_DIR = "/voices"
DEFAULT_VARIANT = "fa2"


@dataclass(frozen=True)
class Variant:
    """One combination of checkpoint, attention kernel, GPU and image, deployed as its own Modal class."""

    name: str
    class_name: str
    model_id: str
    attention: Literal["flash_attention_2", "sdpa"]
    gpu: str
    image: Literal["fa2", "sdpa"]  # flash-attn needs torch 2.9 (its newest wheel); SDPA runs on torch 2.10

    @property
    def model_dir(self) -> str:
        """The checkpoint's directory inside the volume (what the download function writes)."""
        return f"{MODELS_DIR}/{self.model_id.split('/')[-1]}"


VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        Variant("fa2", "TTSFa2", "Qwen/Qwen3-TTS-12Hz-1.7B-Base", "flash_attention_2", "A10G", "fa2"),
        Variant("sdpa", "TTSSdpa", "Qwen/Qwen3-TTS-12Hz-1.7B-Base", "sdpa", "A10G", "sdpa"),
        # FA2 needs Ampere or newer; the T4 (Turing) runs the small model on SDPA.
        Variant("06b", "TTS06B", "Qwen/Qwen3-TTS-12Hz-0.6B-Base", "sdpa", "T4", "sdpa"),
    )
}
