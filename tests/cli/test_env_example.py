"""`.env.example`, copied to `.env` as the README says, is read by every settings class of the bot processes:
its blank entries mean "not set" (the default), in the file and in the environment alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.settings import BackendSettings
from bot.settings import BotSettings, DiscordSettings
from bot.slack.settings import SlackSettings
from commands.settings import CommandSettings

EXAMPLE = Path(__file__).parents[2] / ".env.example"


@pytest.mark.parametrize("settings", [BackendSettings, CommandSettings, BotSettings, DiscordSettings, SlackSettings])
def test_every_settings_class_reads_the_example_env_file(settings, monkeypatch):
    for name in [line.split("=", 1)[0] for line in EXAMPLE.read_text().splitlines() if "=" in line
                 and not line.lstrip().startswith("#")]:
        monkeypatch.delenv(name, raising=False)
    settings(_env_file=EXAMPLE)


def test_a_blank_variable_is_unset(monkeypatch):
    monkeypatch.setenv("DISCORD_DEV_GUILD_ID", "")
    monkeypatch.setenv("DISCORD_READ_ALOUD", "")
    monkeypatch.setenv("VOICEBOT_DATABASE_URL", "")
    discord = DiscordSettings(_env_file=None)
    assert discord.dev_guild_id is None and discord.read_aloud is False
    assert CommandSettings(_env_file=None).database_url == CommandSettings.model_fields["database_url"].default
