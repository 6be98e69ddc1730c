"""One error hierarchy for the whole stack, so every layer can turn a failure into a specific message.

Each error carries a stable `code` (used by tests, logs and the HTTP API), a `message` written for the
end user and an optional `detail` for operators. The bots show `message` as is, so it says what happened and
what the user can do, never a host, URL, variable name, secret or operator instruction; `detail` holds those
(which setting to check, which host failed) and reaches only admins (`/tts-health`) and the logs, redacted.
"""

from __future__ import annotations


class VoicebotError(Exception):
    """Base class: a failure with a user-facing message and a machine-readable code."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        if code is not None:
            self.code = code

    @property
    def operator_text(self) -> str:
        """What admins and logs see: the user's message plus the operator detail, secrets masked."""
        from backend.redaction import redact

        return redact(f"{self.message} ({self.detail})" if self.detail else self.message)


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
