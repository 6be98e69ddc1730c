"""The languages Qwen3-TTS 12 Hz Base models speak, shared by the edge checks and the engine.

The edge validates a language before any backend call, so the list lives here (no model needed);
the engine cross-checks it against the loaded model's own list in `Engine.languages()`.
"""

from __future__ import annotations

from backend.errors import InvalidInput
from backend.validation import shown

AUTO = "Auto"
LANGUAGES: tuple[str, ...] = (
    AUTO, "English", "Chinese", "Japanese", "Korean", "German",
    "French", "Russian", "Portuguese", "Spanish", "Italian",
)
_ALIASES = {
    "en": "English", "zh": "Chinese", "cn": "Chinese", "ja": "Japanese", "jp": "Japanese",
    "ko": "Korean", "de": "German", "fr": "French", "ru": "Russian", "pt": "Portuguese",
    "es": "Spanish", "it": "Italian", "auto": AUTO, "": AUTO,
}
_BY_LOWER = {name.lower(): name for name in LANGUAGES}


def normalize_language(value: str | None) -> str:
    """Map a user's spelling ("english", "EN", None) to the canonical name, or raise with the valid list (the
    unknown value repeated only in part: it may be any size)."""
    key = (value or "").strip().lower()
    name = _BY_LOWER.get(key) or _ALIASES.get(key)
    if name is None:
        raise InvalidInput(
            f"Unknown language {shown(value)}. Choose one of: {', '.join(LANGUAGES)}.",
            code="unknown_language",
        )
    return name
