"""The languages a voice can speak, for option lists and autocomplete in every adapter."""

from __future__ import annotations

from contextlib import suppress

from backend.errors import InvalidInput
from backend.languages import LANGUAGES, normalize_language

__all__ = ["LANGUAGES", "autocomplete_languages", "language_choices"]


def language_choices() -> list[str]:
    """Every language in canonical spelling, "Auto" first (11 names: fits Discord's 25-choice limit)."""
    return list(LANGUAGES)


def autocomplete_languages(prefix: str | None, limit: int = 25) -> list[str]:
    """Canonical names matching what the user typed so far, best first.

    An alias ("en", "jp") ranks first, then names starting with the prefix, then names containing it;
    an empty prefix lists everything. Case-insensitive.
    """
    typed = (prefix or "").strip().lower()
    if not typed:
        return list(LANGUAGES)[:limit]
    ranked: list[str] = []
    with suppress(InvalidInput):
        ranked.append(normalize_language(typed))  # an exact name or alias
    ranked += [name for name in LANGUAGES if name.lower().startswith(typed)]
    ranked += [name for name in LANGUAGES if typed in name.lower()]
    return list(dict.fromkeys(ranked))[: max(limit, 0)]
