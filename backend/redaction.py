"""One redaction rule for every message, health report and log line, in every process.

Secrets reach text in two ways: as a known value (a configured token, echoed in an exception or a URL) and
as a recognisable shape (a Slack token pasted into a message, a bearer header in a library's traceback).
`redact` removes both: registered secret values are masked exactly, token shapes by pattern, and every URL
loses its credentials and query (`https://user:pw@host/path?key=...` -> `https://host/path`).

It sits in `backend` because every layer, the GPU container included, logs through it (`log_setup`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "[redacted]"
# Secrets shorter than this are not registered: masking "abc" everywhere would garble ordinary text.
_MIN_SECRET_CHARS = 6

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,15}://[^\s<>\"'`|]+")
_TOKEN_SHAPES = re.compile(
    "|".join((
        r"\bxox[abposrec]-[A-Za-z0-9-]{6,}",  # Slack bot/user/config tokens
        r"\bxapp-[A-Za-z0-9-]{6,}",  # Slack app-level tokens
        r"\b(?:ak|as|wk|ws)-[A-Za-z0-9]{12,}",  # Modal token ids and secrets
        r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,40}\b",  # Discord bot tokens
        r"\bhf_[A-Za-z0-9]{20,}",  # Hugging Face tokens
    ))
)
# A request line's path with a query ("GET /health?api_key=..." in an access log): the query goes.
_PATH_QUERY = re.compile(r"(?<![\w:])(/[\w\-./%~]*)\?[^\s\"'<>]+")
# "Bearer abc" / "Basic abc" (an Authorization header's value), then "token=abc", "api_key: abc": keep the
# name, mask the value.
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]{4,})")
_NAMED_SECRET = re.compile(
    r"(?i)\b(token|secret|password|passwd|api[_-]?key|signing[_-]?secret|authorization)"
    r"(\s*[:=]\s*['\"]?)(?!\[redacted\]|bearer\b|basic\b)([^\s'\",;&]{4,})"
)

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(*values: str | None) -> None:
    """Remember configured secret values so they are masked wherever they appear, whatever their shape."""
    with _lock:
        _secrets.update(value for value in values if value and len(value) >= _MIN_SECRET_CHARS)


def register_secrets(values: Iterable[Any]) -> None:
    """`register_secret` for pydantic `SecretStr`s (or plain strings, or None) from settings objects."""
    register_secret(*(getattr(value, "get_secret_value", lambda v=value: v)() for value in values if value))


def redact_url(url: str) -> str:
    """The URL with no userinfo, query or fragment: scheme, host, port and path only."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # an unparsable port or bracket: show only the scheme
        return url.split("://", 1)[0] + "://" + MASK
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def redact(text: str) -> str:
    """`text` with registered secrets, token shapes, named secret values and URL credentials/queries masked."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL.sub(lambda match: redact_url(match.group(0)), text)
    text = _PATH_QUERY.sub(lambda match: match.group(1), text)
    text = _TOKEN_SHAPES.sub(MASK, text)
    for pattern in (_AUTH_SCHEME, _NAMED_SECRET):
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return text


def redact_value(value: Any) -> Any:
    """Redact strings inside log event values (dicts, lists and tuples walked; other objects as their text)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    return redact(str(value))
