"""The Slack adapter's settings from the environment or `.env` (prefix SLACK_).

Limits, cooldowns and admin ids are shared with Discord (`commands.settings.CommandSettings`, VOICEBOT_*), the
backend choice too (`backend.settings.BackendSettings`); only what is Slack's own lives here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SLACK_API_URL = "https://slack.com/api/"


def _set(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value().strip())


class SlackSettings(BaseSettings):
    """Tokens and transport. Socket Mode (the default) needs the bot token and an app-level token; HTTP mode
    needs the bot token and the signing secret, and a public URL that forwards to `port` + `path`."""

    model_config = SettingsConfigDict(env_prefix="SLACK_", env_file=".env", env_ignore_empty=True, extra="ignore")

    bot_token: SecretStr | None = None  # xoxb-..., OAuth & Permissions
    app_token: SecretStr | None = None  # xapp-..., Basic Information > App-Level Tokens (connections:write)
    signing_secret: SecretStr | None = None  # Basic Information > App Credentials
    mode: Literal["socket", "http"] = "socket"
    host: str = "0.0.0.0"
    port: int = 3000
    path: str = "/slack/events"
    api_url: str = SLACK_API_URL  # only changed by tests (a local fake Slack)

    def missing(self) -> list[str]:
        """The environment variables this mode still needs, each with where to find its value."""
        needs: list[str] = []
        token = self.bot_token.get_secret_value().strip() if _set(self.bot_token) else ""
        if not token.startswith("xoxb-"):
            needs.append("SLACK_BOT_TOKEN (xoxb-..., from OAuth & Permissions after installing the app)")
        if self.mode == "socket":
            app_token = self.app_token.get_secret_value().strip() if _set(self.app_token) else ""
            if not app_token.startswith("xapp-"):
                needs.append("SLACK_APP_TOKEN (xapp-..., Basic Information > App-Level Tokens, "
                             "scope connections:write)")
        elif not _set(self.signing_secret):
            needs.append("SLACK_SIGNING_SECRET (Basic Information > App Credentials)")
        return needs
