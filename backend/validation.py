"""Checks on the text side of a request, shared by the edge and the backend."""

from __future__ import annotations

from backend.errors import InvalidInput

DEFAULT_MAX_TEXT_CHARS = 1000


def check_text(text: str, max_chars: int = DEFAULT_MAX_TEXT_CHARS, *, field: str = "text") -> str:
    """Strip and bound a text; empty or oversized text gets a message naming the field and the limit."""
    cleaned = (text or "").strip()
    if not cleaned:
        raise InvalidInput(f"The {field} is empty: type what the voice should say.", code="empty_text")
    if len(cleaned) > max_chars:
        raise InvalidInput(
            f"The {field} is {len(cleaned)} characters; the limit is {max_chars}.", code="text_too_long"
        )
    return cleaned
