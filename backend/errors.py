"""One error hierarchy for the whole stack, so every layer can turn a failure into a specific message.

Each error carries a stable `code` (used by tests, logs and the HTTP API) and a `message` written for the
end user: the bots show it as is, so it must never contain secrets or stack traces.
"""

from __future__ import annotations


class VoicebotError(Exception):
    """Base class: a failure with a user-facing message and a machine-readable code."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidInput(VoicebotError):
    """The request itself is wrong (bad clip, text too long, unknown language): retrying will not help."""

    code = "invalid_input"


class EngineConfigError(VoicebotError):
    """The engine was asked for something this machine cannot do (e.g. flash-attn not installed)."""

    code = "engine_config"


class BackendNotConfigured(VoicebotError):
    """The chosen backend lacks credentials or a URL; the operator must fix configuration."""

    code = "backend_not_configured"


class BackendUnavailable(VoicebotError):
    """The backend cannot be reached or is not deployed."""

    code = "backend_unavailable"


class BackendTimeout(VoicebotError):
    """The backend did not answer within the configured time."""

    code = "backend_timeout"


class BackendFailed(VoicebotError):
    """The backend answered with an error while generating."""

    code = "backend_failed"
