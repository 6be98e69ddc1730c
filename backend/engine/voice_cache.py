"""Bounded LRU of voice prompts: the same reference clip (and transcript) is encoded once, then reused."""

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


class VoiceCache:
    """Thread-safe LRU with hit/miss counters for the health report."""

    def __init__(self, capacity: int) -> None:
        self._entries: LRUCache[str, Any] = LRUCache(maxsize=capacity)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
            return value

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._entries[key] = value

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(size=len(self._entries), capacity=int(self._entries.maxsize),
                              hits=self.hits, misses=self.misses)
