"""What a saved voice may be called, and the key two names collide on.

A voice name is shown in chat (lists, autocomplete, the timing embed) and typed back by users, on two platforms
with different markup. So the rule is an allowlist, not a list of bad things: after NFKC (full-width and styled
letters become plain ones) only letters (with their combining marks), digits, spaces and ``-_.'`` remain.
That leaves no markdown or mention syntax (``*`~|<>@#:``), no emoji or shortcodes, no zero-width, bidi or
control characters; anything else is refused with the offending character named. The key is what makes
"My Voice", "my  voice" and "ＭＹ ＶＯＩＣＥ" one name.
"""

from __future__ import annotations

import unicodedata

from backend.errors import InvalidInput

MAX_NAME_CHARS = 32
PUNCTUATION = "-_.'"
MAX_MARKS_IN_A_ROW = 3  # enough for any script's stacked vowel signs, too few for "zalgo" text


class BadVoiceName(InvalidInput):
    """The name breaks the naming rule; the message says which part."""

    code = "bad_voice_name"


RULE = (f"Voice names are 1-{MAX_NAME_CHARS} characters: letters, digits, spaces and {' '.join(PUNCTUATION)} "
        "only.")


def check_voice_name(name: str) -> tuple[str, str]:
    """(display name, key) for `name`, or `BadVoiceName`.

    The display name is NFKC-normalised, trimmed, with runs of spaces collapsed to one; the key is the display
    name casefolded (and normalised again: casefolding can undo NFKC)."""
    display = " ".join(part for part in unicodedata.normalize("NFKC", name or "").split(" ") if part)
    if not display:
        raise BadVoiceName(f"The voice needs a name. {RULE}")
    _check_characters(display)
    if len(display) > MAX_NAME_CHARS:
        raise BadVoiceName(f"That name is {len(display)} characters long. {RULE}")
    key = unicodedata.normalize("NFKC", display.casefold())
    return display, " ".join(part for part in key.split(" ") if part)


def _check_characters(display: str) -> None:
    marks = 0
    for index, char in enumerate(display):
        category = unicodedata.category(char)
        if category[0] == "M":
            marks += 1
            if index == 0 or marks > MAX_MARKS_IN_A_ROW:
                raise BadVoiceName(f"That name has stray accent marks. {RULE}")
            continue
        marks = 0
        if char == " " or char in PUNCTUATION or category[0] == "L" or category == "Nd":
            continue
        raise BadVoiceName(f"Voice names can't contain {_describe(char)}. {RULE}")
    if not any(unicodedata.category(char)[0] == "L" or unicodedata.category(char) == "Nd" for char in display):
        raise BadVoiceName(f"A voice name needs at least one letter or digit. {RULE}")


def _describe(char: str) -> str:
    """The refused character as the user can read it: printable ones quoted, invisible ones by code point."""
    if unicodedata.category(char)[0] in "CZ":  # control, format (zero-width, bidi), separators
        name = unicodedata.name(char, "")
        return f"the invisible character U+{ord(char):04X}" + (f" ({name.lower()})" if name else "")
    return f"“{char}”"


def name_key(typed: str) -> str:
    """The key of what a user has typed so far (autocomplete): normalised like `check_voice_name`'s key, but
    never refused, since a half-typed name may end in a space or hold a character no name has."""
    key = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", typed or "").casefold())
    return " ".join(part for part in key.split(" ") if part)
