"""The Discord frontend: `/clone`, the "Clone this voice" message menu and `/tts-health`, over `commands/`.

`run_discord` is what `voicebot discord [--sync]` calls.
"""

from bot.discord.runner import run_discord

__all__ = ["run_discord"]
