"""The OpenAI-compatible audio API (`/v1/audio/speech`, `/v1/audio/voices`, `/v1/models`) on the backend's
clone service: see `app`."""

from backend.openai_api.app import PREFIX, body_limits, create_openai_app
from backend.openai_api.errors import too_large, unauthorized
from backend.openai_api.schema import DEFAULT_MODELS

__all__ = ["DEFAULT_MODELS", "PREFIX", "body_limits", "create_openai_app", "too_large", "unauthorized"]
