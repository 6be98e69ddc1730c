"""Checks on the text side of a request, shared by the edge and the backend.

"Empty" means nothing to see, not just nothing but spaces: a text made of zero-width spaces, joiners, a BOM,
bidi marks or control characters would reach the model as silence (or garbage), so such text is empty too.
What counts as visible comes from the Unicode categories (`unicodedata`), not from a list of known invisible
characters, so characters nobody listed are judged the same way.
"""

from __future__ import annotations

import unicodedata

from backend.errors import InvalidInput

DEFAULT_MAX_TEXT_CHARS = 1000
SHOWN_CHARS = 40  # how much of a rejected value an error message repeats back

# Letters, numbers, punctuation and symbols are what a reader sees. Marks (M*) only decorate a letter;
# separators (Z*) and the "other" categories (control, format, surrogate, private use, unassigned) show nothing.
_VISIBLE = frozenset("LNPS")
_INVISIBLE = frozenset("CZ")


def _visible(char: str) -> bool:
    return unicodedata.category(char)[0] in _VISIBLE


def _strippable(char: str) -> bool:
    return char.isspace() or unicodedata.category(char)[0] in _INVISIBLE


def clean_text(text: str | None) -> str:
    """`text` in NFC with invisible characters (whitespace, format and control characters) trimmed from both
    ends; those inside stay, since a zero-width joiner inside an emoji or a word can carry meaning."""
    normalized = unicodedata.normalize("NFC", text or "").strip()
    start, end = 0, len(normalized)
    while start < end and _strippable(normalized[start]):
        start += 1
    while end > start and _strippable(normalized[end - 1]):
        end -= 1
    return normalized[start:end]


def has_visible_text(text: str | None) -> bool:
    """Whether `text` holds at least one letter, number, punctuation mark or symbol."""
    return any(_visible(char) for char in text or "")


def check_text(text: str | None, max_chars: int = DEFAULT_MAX_TEXT_CHARS, *, field: str = "text") -> str:
    """The cleaned text (see `clean_text`); text with nothing visible, a lone surrogate (not encodable, it would
    fail later as a 500) or more than `max_chars` characters gets a message naming the field and the limit.

    Text already too long without its surrounding whitespace (a C-speed strip) is refused as it is, so the
    per-character cleaning never runs over more than `max_chars` characters, whatever a caller sends."""
    stripped = (text or "").strip()
    cleaned = clean_text(stripped) if len(stripped) <= max_chars else stripped
    if len(cleaned) > max_chars:  # NFC can lengthen a text a little (a few characters decompose)
        raise InvalidInput(
            f"The {field} is {len(cleaned)} characters; the limit is {max_chars}.", code="text_too_long"
        )
    if not has_visible_text(cleaned):
        raise InvalidInput(f"The {field} is empty: type what the voice should say.", code="empty_text")
    if any(unicodedata.category(char) == "Cs" for char in cleaned):
        raise InvalidInput(f"The {field} contains characters that are not valid text.", code="invalid_text")
    return cleaned


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """`value` quoted for an error message, cut to `limit` characters: a message never repeats a whole
    megabyte that a caller sent."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…"
