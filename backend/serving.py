"""What a serving process (the GPU container) reads from its environment: who may call its web API and how it logs.

The web API is closed by default. Three ways to run it, decided here once for the deploying shell and again,
from the same variables, inside the container:

- `token`: `VOICEBOT_HTTP_TOKEN` is set; every request must carry it as `Authorization: Bearer <token>`.
- `proxy`: nothing is set; Modal's proxy auth closes the endpoint (requests need a Modal proxy auth token, sent as
  `Modal-Key` / `Modal-Secret` headers), so an anonymous request never even starts a GPU container.
- `open`: `VOICEBOT_HTTP_OPEN=1` and no token; anyone who knows the URL can use the GPU. Only ever on purpose.

An empty or blank token is no token. A short one is refused: it is guessable, and the redaction rule does not
mask values that short (`backend.redaction`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from backend.log_setup import setup_logging
from backend.redaction import register_secret

TOKEN_ENV = "VOICEBOT_HTTP_TOKEN"
OPEN_ENV = "VOICEBOT_HTTP_OPEN"
MIN_TOKEN_CHARS = 16


class WebAccess(StrEnum):
    TOKEN = "token"
    PROXY = "proxy"
    OPEN = "open"


class ServingConfigError(Exception):
    """The serving environment is contradictory or unsafe; raised where it is read (at `modal deploy`), so the
    operator sees it before anything is deployed. The message names the variable, never its value. Not a
    ValueError: pydantic would wrap that in a ValidationError that prints the input, token included."""


class ServingSettings(BaseSettings):
    """VOICEBOT_HTTP_TOKEN / VOICEBOT_HTTP_OPEN / VOICEBOT_LOG_LEVEL / VOICEBOT_LOG_FORMAT of a serving process."""

    # env_ignore_empty: `VOICEBOT_HTTP_TOKEN=` in a shell means "no token", not an empty token that matches an
    # empty header. No .env file: the deploying shell's variables are what the container gets.
    model_config = SettingsConfigDict(env_prefix="VOICEBOT_", env_ignore_empty=True, extra="ignore")

    http_token: SecretStr | None = None
    http_open: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["console", "json"] = "console"

    def model_post_init(self, context: Any) -> None:
        # Checked here rather than in a pydantic validator: a validation error would print the token's value.
        if self.token is not None and len(self.token) < MIN_TOKEN_CHARS:
            raise ServingConfigError(
                f"{TOKEN_ENV} is shorter than {MIN_TOKEN_CHARS} characters; use a random one, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
            )
        if self.token is not None and self.http_open:
            raise ServingConfigError(f"Set {TOKEN_ENV} or {OPEN_ENV}=1, not both: an endpoint is closed or open.")

    @property
    def token(self) -> str | None:
        """The bearer token, surrounding whitespace removed; None when unset or blank."""
        value = self.http_token.get_secret_value().strip() if self.http_token else ""
        return value or None

    @property
    def web_access(self) -> WebAccess:
        if self.token is not None:
            return WebAccess.TOKEN
        return WebAccess.OPEN if self.http_open else WebAccess.PROXY

    def container_env(self) -> dict[str, str]:
        """The variables (other than the token, which travels as a Modal Secret) the container needs to decide
        the same way as the deploying shell."""
        env = {"VOICEBOT_LOG_LEVEL": self.log_level, "VOICEBOT_LOG_FORMAT": self.log_format}
        return env | ({OPEN_ENV: "1"} if self.web_access is WebAccess.OPEN else {})

    def start(self) -> None:
        """Set up logging (plain tracebacks, every line redacted) and mask the token wherever it might appear."""
        setup_logging(self.log_level, self.log_format)
        register_secret(self.token)
