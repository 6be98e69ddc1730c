"""A Discord message as text to read aloud: Discord's markup turned into words, then `commands.read_aloud`'s
rendering for what any chat message holds (links, code, emoji, repeats, markdown).

Mentions become the names people see (discord.py's `clean_content`: members, roles and channels by name, from
the message's own mention data), without the "@" or "#"; custom emoji and timestamps are skipped; attachments
and stickers are named ("an attachment", "a sticker") rather than read.
"""

from __future__ import annotations

import re

import discord

from commands.read_aloud import speakable

_CUSTOM_EMOJI = re.compile(r"<a?:\w+:\d+>")
_TIMESTAMP = re.compile(r"<t:-?\d+(:[tTdDfFR])?>")
_MENTION_SIGIL = re.compile(r"(?<!\w)[@#](?=\w)")


def message_text(message: discord.Message) -> str:
    """What of `message` is said ("" when nothing is worth saying)."""
    text = _MENTION_SIGIL.sub("", _TIMESTAMP.sub(" ", _CUSTOM_EMOJI.sub(" ", message.clean_content)))
    extras = []
    if message.attachments:
        extras.append("an attachment" if len(message.attachments) == 1 else f"{len(message.attachments)} attachments")
    if message.stickers:
        extras.append("a sticker")
    said = speakable(text)
    if extras:
        said = f"{said}, with {' and '.join(extras)}" if said else f"sent {' and '.join(extras)}"
    return said


def author_name(message: discord.Message) -> str:
    """The name shown in the channel: the server nickname, else the display name."""
    return message.author.display_name
