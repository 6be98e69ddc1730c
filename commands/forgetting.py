"""Forget-me's two outward parts: what it tells the user it deleted, and asking every backend variant to drop the
voice prompts it cached from the user's clips (`VoiceLibrary.forget_me` does the deleting itself)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from backend.clients.base import BackendClient
from backend.errors import VoicebotError

log = structlog.get_logger(__name__)
FORGET_TIMEOUT_S = 60.0  # a cold Modal backend starts a container to drop its cache entries


@dataclass(frozen=True)
class ForgetMeReport:
    """What forget-me deleted, for the user to read. `cached_voices` is None when a backend could not be asked
    (its cache forgets idle voices on its own)."""

    voices: list[str]  # names
    clips: int
    audit_entries: int
    journal_entries: int
    jobs_cancelled: int
    undelivered: int
    cached_voices: int | None
    api_keys: int = 0

    def summary(self) -> str:
        names = ", ".join(self.voices) if self.voices else "none"
        lines = [
            f"Voices deleted: {len(self.voices)} ({names})",
            f"Audio files deleted (reference clips, kept results): {self.clips}",
            f"Activity records deleted: {self.audit_entries}",
            f"Job records deleted: {self.journal_entries}",
            f"Jobs cancelled: {self.jobs_cancelled}",
            f"Undelivered results deleted: {self.undelivered}",
            f"API keys deleted: {self.api_keys}",
            "Backend voice cache: " + (f"{self.cached_voices} cached voices dropped" if self.cached_voices is not None
                                       else "could not be reached; it drops unused voices on its own"),
        ]
        return "\n".join(lines)


async def forget_cached(variants: Mapping[str, BackendClient], clip_sha256s: list[str]) -> int | None:
    """Drop the clips' voice prompts from every backend variant's cache; None if one could not be asked."""
    total: int | None = 0
    for name, client in variants.items():
        try:
            async with asyncio.timeout(FORGET_TIMEOUT_S):
                dropped = await client.forget_voices(clip_sha256s)
        except (VoicebotError, TimeoutError) as exc:
            log.warning("voice.cache_not_forgotten", variant=name,
                        detail=exc.operator_text if isinstance(exc, VoicebotError) else "no answer in time")
            total = None
        else:
            total = None if total is None else total + dropped
    return total
