"""`ref_audio`, the reference clip inside a speech request, as vllm-omni's speech API names it: here the clip
itself, as standard base64 or a `data:` URL (`data:audio/wav;base64,...`). vllm-omni also takes a URL or a file
path; this server never fetches a URL or opens a path named by a caller, and says so.

Bounded before anything is decoded: a string longer than the base64 of the largest clip the intake takes (plus
room for line breaks and a data-URL header) is refused by its length, so decoding never holds more than one
clip; what decodes is then judged by its content (`backend.intake`, in the engine), never by the declared type.
"""

from __future__ import annotations

import base64
import binascii
import math

from backend.intake.limits import MIB, AudioLimits
from backend.openai_api.errors import InvalidParam

_HEADER_CHARS = 256  # a data-URL header
_LINE_BREAK_SHARE = 40  # base64 wrapped at 76 characters per line, with CRLF: under 1/38 more


def max_ref_audio_chars(limits: AudioLimits) -> int:
    """The longest `ref_audio` string worth decoding."""
    encoded = 4 * math.ceil(limits.max_bytes / 3)
    return encoded + encoded // _LINE_BREAK_SHARE + _HEADER_CHARS


def decode_ref_audio(value: str, limits: AudioLimits) -> bytes:
    """The clip's bytes; `InvalidParam(param="ref_audio")` for a URL, a path, malformed base64 or a string
    longer than any valid clip needs."""
    if len(value) > max_ref_audio_chars(limits):
        raise InvalidParam(f"ref_audio is longer than the base64 of a {limits.max_bytes / MIB:.0f} MiB clip, the "
                           "limit.", param="ref_audio", code="audio_too_large")
    if value[:5].lower() == "data:":
        header, comma, value = value.partition(",")
        if not comma or not header.lower().endswith(";base64") or len(header) > _HEADER_CHARS:
            raise InvalidParam("ref_audio is a data: URL without base64 data (data:audio/wav;base64,...).",
                               param="ref_audio", code="bad_base64")
    elif ":" in value:  # never in base64; always in a URL (after its scheme) or a Windows path
        raise InvalidParam("ref_audio must be the clip itself, as base64 or a data: URL; this server does not "
                           "fetch URLs or read files.", param="ref_audio", code="ref_audio_not_inline")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParam("ref_audio is not valid base64.", param="ref_audio", code="bad_base64") from None

