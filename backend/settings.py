"""Backend choice and engine options from the environment (prefix VOICEBOT_) or a `.env` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_MODEL = "demo"  # the embedded default: a tiny random-weight checkpoint built on first use
DEFAULT_CHECKPOINT_DIR = Path.home() / ".cache" / "voicebot" / "checkpoints"


class BackendSettings(BaseSettings):
    """Which backend the bots call and how the local engine is built.

    VOICEBOT_BACKEND=local runs the engine in-process (needs the `engine` extra); `modal` calls the deployed
    Modal classes; `http` calls the web endpoints of a deployed variant (or any compatible server).
    """

    model_config = SettingsConfigDict(env_prefix="VOICEBOT_", env_file=".env", env_ignore_empty=True, extra="ignore")

    backend: Literal["local", "modal", "http"] = "local"
    # local engine
    model: str = DEMO_MODEL
    attention: Literal["flash_attention_2", "sdpa", "eager"] = "sdpa"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device: str = "auto"
    # auto: the fast engine on CUDA (stock if it cannot start, which health reports), stock elsewhere
    engine_mode: Literal["stock", "fast", "auto"] = "auto"
    checkpoint_dir: Path = DEFAULT_CHECKPOINT_DIR
    # modal
    modal_app: str = "voicebot-tts"
    modal_variants: list[str] = ["fa2"]
    # http
    http_url: str = ""
    http_token: SecretStr | None = None
    # all
    timeout_s: float = 300.0

    @property
    def demo_checkpoint(self) -> Path:
        return self.checkpoint_dir / "tiny"

    @property
    def uses_demo_model(self) -> bool:
        return self.model == DEMO_MODEL
