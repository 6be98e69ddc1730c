"""Each user's last reference clip, so `/speak` without a voice speaks in the voice they cloned last.

Kept in memory only, for a while, within a byte budget: a one-off `/clone` never asked to keep the clip, so it is
not written anywhere and is gone after `TTL_S`, at a restart, or when the user asks the bot to forget them.
Saving a voice (with consent) is how a voice is kept for good.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from cachetools import TTLCache

TTL_S = 60 * 60.0
BUDGET_BYTES = 64 * 1024 * 1024  # about 45 thirty-second clips at 24 kHz


@dataclass(frozen=True)
class RecentClip:
    wav: bytes  # the intake's WAV, as sent to the backend
    transcript: str | None


class RecentClips:
    """user key ("discord:1234") -> their last clip; the oldest go first when over the budget."""

    def __init__(self, *, ttl_s: float = TTL_S, budget_bytes: int = BUDGET_BYTES) -> None:
        self._clips: TTLCache[str, RecentClip] = TTLCache(maxsize=budget_bytes, ttl=ttl_s,
                                                          getsizeof=lambda clip: len(clip.wav) + 1)
        self._lock = threading.Lock()

    def remember(self, user_key: str, wav: bytes, transcript: str | None) -> None:
        with self._lock:
            self._clips.pop(user_key, None)
            if len(wav) < self._clips.maxsize:
                self._clips[user_key] = RecentClip(wav, transcript)

    def last(self, user_key: str) -> RecentClip | None:
        with self._lock:
            return self._clips.get(user_key)

    def forget(self, user_key: str) -> bool:
        with self._lock:
            return self._clips.pop(user_key, None) is not None
