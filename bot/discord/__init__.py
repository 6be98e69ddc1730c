"""The Discord frontend over `commands/`: `/clone`, the "Clone this voice" message menu, `/voice ...` and `/say`
(the voice library), `/tts-check` and `/tts-health`.

`run_discord` is what `voicebot discord [--sync]` calls.
"""

from bot.discord.runner import run_discord

__all__ = ["run_discord"]
