"""Bot-side settings from the environment or `.env`: logging for every bot process, and the Discord adapter's own.

Limits, cooldowns and admin ids live in `commands.settings.CommandSettings` (VOICEBOT_*) and the backend choice in
`backend.settings.BackendSettings` (VOICEBOT_BACKEND, ...): the platform adapters share those.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BotSettings(BaseSettings):
    """What every bot process shares: how it logs and how long it waits for running jobs when stopped."""

    model_config = SettingsConfigDict(env_prefix="VOICEBOT_", env_file=".env", env_ignore_empty=True, extra="ignore")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["console", "json"] = "console"
    # On SIGTERM/SIGINT queued jobs are refused at once; running ones get this long to finish and post.
    shutdown_grace_s: float = Field(60.0, ge=0)


class DiscordSettings(BaseSettings):
    """The Discord bot: DISCORD_TOKEN from the Developer Portal; a guild for instant command sync while developing."""

    model_config = SettingsConfigDict(env_prefix="DISCORD_", env_file=".env", env_ignore_empty=True, extra="ignore")

    token: SecretStr | None = None
    # Commands are copied to this guild and synced there on every start (instant); without it nothing is synced
    # unless `voicebot discord --sync` asks for a global sync (which takes up to an hour to reach every client).
    dev_guild_id: int | None = None
    # /speak and /read: leave a voice channel after this many seconds with nothing to play (unless reading)
    voice_idle_s: float = Field(120.0, gt=0)
    # /read (read a text channel aloud): needs the privileged Message Content intent, switched on in the
    # Developer Portal (Bot -> Privileged Gateway Intents) before this is set
    read_aloud: bool = False
