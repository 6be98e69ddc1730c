"""Results that no delivery route could hand over, kept on disk so they are not lost.

A finished clone is delivered through the platform's routes in order (Discord: interaction follow-up, channel
message, DM; Slack: thread upload, DM). When every route fails, the adapter keeps the WAV here and tells the
user the job id; admins see the count and the newest entries in `/tts-health` and can hand the file over.
Bounded in count and bytes: the oldest entries go first, so a platform outage cannot fill the disk.

Blocking file I/O: async callers use `asyncio.to_thread`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)
_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class UndeliveredResult:
    """What an admin needs to hand a result over: whose it is, where it was asked for, and the file."""

    job_id: str
    user_id: str
    place: str
    reason: str
    kept_at: float
    wav: Path


class UndeliveredStore:
    """WAV + JSON metadata per job under `directory`, at most `max_items` entries and `max_bytes` of audio."""

    def __init__(self, directory: Path, *, max_items: int = 200, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.directory = directory
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._last_kept = 0.0

    def keep(self, job_id: str, user_id: str, place: str, audio: bytes, reason: str) -> UndeliveredResult:
        """Store one result (replacing an earlier one of the same job), then evict the oldest beyond the bounds."""
        name = _SAFE_ID.sub("_", job_id) or "job"
        with self._lock:
            # strictly increasing, so "newest first" holds for results kept within one clock tick
            self._last_kept = max(time.time(), self._last_kept + 1e-6)
            entry = UndeliveredResult(job_id, user_id, place, reason, self._last_kept, self.directory / f"{name}.wav")
            self.directory.mkdir(parents=True, exist_ok=True)
            entry.wav.write_bytes(audio)
            meta = asdict(entry) | {"wav": entry.wav.name}
            entry.wav.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
            self._evict()
        log.warning("result.kept_undelivered", job_id=job_id, user_id=user_id, place=place, reason=reason,
                    path=str(entry.wav))
        return entry

    def entries(self) -> list[UndeliveredResult]:
        """Every kept result, newest first; entries whose files went missing or are unreadable are skipped."""
        found: list[UndeliveredResult] = []
        for meta_path in self.directory.glob("*.json"):
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                entry = UndeliveredResult(**(meta | {"wav": meta_path.with_suffix(".wav")}))
            except (OSError, ValueError, TypeError):
                continue
            if entry.wav.exists():
                found.append(entry)
        return sorted(found, key=lambda entry: entry.kept_at, reverse=True)

    def forget_user(self, user_id: str) -> int:
        """Delete every result kept for `user_id` (forget-me); how many went."""
        with self._lock:
            mine = [entry for entry in self.entries() if entry.user_id == user_id]
            for entry in mine:
                entry.wav.unlink(missing_ok=True)
                entry.wav.with_suffix(".json").unlink(missing_ok=True)
        log.info("result.undelivered_forgotten", user_id=user_id, removed=len(mine))
        return len(mine)

    def _evict(self) -> None:
        entries = self.entries()
        total = 0
        for index, entry in enumerate(entries):
            total += entry.wav.stat().st_size
            if index >= self.max_items or total > self.max_bytes:
                entry.wav.unlink(missing_ok=True)
                entry.wav.with_suffix(".json").unlink(missing_ok=True)
                log.warning("result.undelivered_evicted", job_id=entry.job_id)
