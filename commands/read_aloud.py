"""Reading a text channel aloud, the same on every platform: the session's settings, which voice reads a
message, and what of a chat message is worth saying.

Chat is not prose. What a listener wants to hear, following the most used TTS bot's behaviour:
- links as "a link to example.com", code blocks as "a code block", spoilers as "a spoiler" (never read out);
- emoji skipped; a character repeated for emphasis said at most three times ("nooooo" -> "nooo", "!!!!" -> "!");
- markdown markers (`*`, `_`, `~`, `` ` ``, `>` quotes, `#` headings) dropped, their text kept;
- "<name> said" before a message when the author changed since the last message read (a setting);
- a message that is nothing but noise is not read at all.
Platform markup (mentions, custom emoji) is the adapter's job: it hands over the text with names already in.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from commands.speech import Speaker
from commands.storage.voices import Member, Voice
from commands.voice_library import VoiceLibrary

MIN_SECONDS, MAX_SECONDS, DEFAULT_SECONDS = 10, 60, 30
MAX_READ_CHARS = 1000  # a wall of text is cut here before rendering: nobody listens to more in a chat

_CODE_BLOCK = re.compile(r"```.*?(```|$)", re.DOTALL)
_SPOILER = re.compile(r"\|\|.+?\|\|", re.DOTALL)
_URL = re.compile(r"<?(https?://[^\s>]+)>?")
_MARKERS = re.compile(r"(\*{1,3}|_{1,3}|~~|`+)")
_LINE_MARKUP = re.compile(r"^\s*(>{1,3}|#{1,3}|-#)\s+", re.MULTILINE)
_REPEATS = re.compile(r"(.)\1{3,}", re.DOTALL)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class ReadSettings:
    """A `/read` session's settings, chosen when it starts."""

    max_seconds: float = DEFAULT_SECONDS  # each message is cut after this much speech
    say_names: bool = True  # "<name> said" when the author changes
    skip_bots: bool = True  # messages of bots and webhooks are not read
    require_in_voice: bool = True  # only authors who are in the voice channel are read

    def __post_init__(self) -> None:
        if not MIN_SECONDS <= self.max_seconds <= MAX_SECONDS:
            raise ValueError(f"max_seconds must be {MIN_SECONDS}-{MAX_SECONDS}")


def _is_emoji(char: str) -> bool:
    """Pictographs and their modifiers: symbols ("So"), variation selectors, the zero-width joiner, skin tones."""
    category = unicodedata.category(char)
    return category == "So" or char in "\u200d\ufe0f\ufe0e" or 0x1F3FB <= ord(char) <= 0x1F3FF \
        or 0x1F1E6 <= ord(char) <= 0x1F1FF


def _link(match: re.Match[str]) -> str:
    host = urlsplit(match.group(1)).hostname or ""
    host = host.removeprefix("www.")
    return f" a link to {host} " if host else " a link "


def speakable(text: str) -> str:
    """What of a chat message is said ("" when nothing is worth saying)."""
    text = text[:MAX_READ_CHARS]
    text = _CODE_BLOCK.sub(" a code block ", text)
    text = _SPOILER.sub(" a spoiler ", text)
    text = _URL.sub(_link, text)
    text = _LINE_MARKUP.sub("", text)
    text = _MARKERS.sub("", text)
    text = "".join(char for char in text if not _is_emoji(char))
    text = _REPEATS.sub(lambda match: match.group(1) * (1 if not match.group(1).isalnum() else 3), text)
    text = _SPACES.sub(" ", text).strip()
    return text if any(char.isalnum() for char in text) else ""


def with_name(text: str, name: str, *, previous_author: str | None, author: str, settings: ReadSettings) -> str:
    """`text`, with "<name> said" before it when names are on and the author changed."""
    if not settings.say_names or previous_author == author:
        return text
    name = speakable(name) or "Someone"
    return f"{name} said: {text}"


async def voice_of(library: VoiceLibrary | None, author: Member, default: Speaker | None) -> Speaker | None:
    """The voice a message of `author` is read in: their own voice saved in this workspace (the one they used
    last, else the newest), else the session's default; None when neither exists (the message is skipped).
    `Blocked` for an author an admin stopped from using voices: not even the default reads them."""
    if library is not None:
        await library.check_may_use_voices(author)
        own = [voice for voice in await library.storage.voices.owned_by(author.platform, author.user_id)
               if voice.owner.workspace_id == author.workspace_id]
        if own:
            voice = max(own, key=_recency)
            return Speaker(await library.clip_of(author, voice), voice.transcript, voice)
    return default


def _recency(voice: Voice) -> tuple[float, float]:
    return (voice.last_used_at.timestamp() if voice.last_used_at else 0.0, voice.created_at.timestamp())
