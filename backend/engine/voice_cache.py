"""Bounded LRU of voice prompts: the same reference clip (and transcript) is encoded once, then reused.

An entry is keyed by the decoded audio (`voice_key`), but a bot knows a saved voice by the SHA-256 of the clip
bytes it sent; each entry remembers the digests of the uploads that reached it, so `forget` can drop a user's
voices by what the bot knows (forget-me).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import numpy as np
from cachetools import LRUCache

from backend.schema import CacheStats


def voice_key(samples: np.ndarray, sample_rate: int, ref_text: str | None) -> str:
    """Hash of the decoded, normalised clip (not the file bytes: a re-encoded upload of the same audio hits)."""
    digest = hashlib.sha256()
    digest.update(str(sample_rate).encode())
    digest.update(np.ascontiguousarray(samples, dtype=np.float32).tobytes())
    digest.update(b"\0" + (ref_text or "").strip().encode())
    return digest.hexdigest()


def clip_sha256(clip: bytes) -> str:
    """The digest a bot sends to `forget_voices` for a clip: SHA-256 of the bytes of `CloneRequest.reference`."""
    return hashlib.sha256(clip).hexdigest()


class _Entry:
    __slots__ = ("prompt", "sources")

    def __init__(self, prompt: Any, source: str) -> None:
        self.prompt = prompt
        self.sources = {source}


class VoiceCache:
    """Thread-safe LRU with hit/miss counters for the health report."""

    def __init__(self, capacity: int) -> None:
        self._entries: LRUCache[str, _Entry] = LRUCache(maxsize=capacity)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str, source: str) -> Any | None:
        """The prompt for `key`, or None; a hit from another upload of the same audio (`source`, its clip's
        SHA-256) adds that upload to the entry, so forgetting either drops it."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
            entry.sources.add(source)
            return entry.prompt

    def put(self, key: str, value: Any, source: str) -> None:
        with self._lock:
            self._entries[key] = _Entry(value, source)

    def forget(self, sources: set[str]) -> int:
        """Drop every entry made from or reached by one of these clip digests; how many were dropped."""
        with self._lock:
            doomed = [key for key, entry in self._entries.items() if entry.sources & sources]
            for key in doomed:
                del self._entries[key]
            return len(doomed)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(size=len(self._entries), capacity=int(self._entries.maxsize),
                              hits=self.hits, misses=self.misses)
