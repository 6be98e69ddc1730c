"""Tests of the serving side of the backend: the web API, the Modal app and the clients."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend import modal_app

REAL_ENGINE_CONFIG = modal_app.engine_config  # captured before any test patches it


def load_tiny_checkpoint(patch: pytest.MonkeyPatch, checkpoint: Path, *, on_cpu: bool = True) -> None:
    """Point the Modal classes' engine at the tiny checkpoint; `on_cpu` also swaps FA2/cuda:0 for SDPA/CPU."""
    overrides = {"model": str(checkpoint)} | ({"attention": "sdpa", "device": "cpu"} if on_cpu else {})
    patch.setattr(modal_app, "engine_config", lambda variant: REAL_ENGINE_CONFIG(variant).model_copy(update=overrides))
