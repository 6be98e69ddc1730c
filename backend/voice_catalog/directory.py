"""A `BlockingVoiceCatalog` in a directory: one sub-directory per voice, named by its id, holding the clip and a JSON
record (name, transcript, clip digest, consent).

Writes are atomic: a voice is written in full into a staging directory (files fsynced) and then renamed into
place in one step, so a reader sees a whole voice or none, and two uploads of one name cannot both win (the
second rename finds the directory there and fails). Records are read with a size cap, and an entry that is
not a voice (a stray file, a damaged record) is skipped with a warning, never served.

The directory may be shared by several processes (on Modal, a volume mounted by every container): `refresh`
(the volume's reload) runs before a listing and when a name is not found, at most every `refresh_every_s`;
`on_changed` (the volume's commit) runs after each save and deletion, so the other containers see it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from backend.errors import InvalidInput
from backend.voice_catalog.catalog import Consent, SavedVoice, VoiceLimitReached, VoiceNameTaken, voice_id

log = structlog.get_logger(__name__)
CLIP_FILE = "clip.wav"
RECORD_FILE = "voice.json"
MAX_RECORD_BYTES = 64 * 1024  # a name, a transcript (1,000 characters) and the consent fit many times over
DEFAULT_MAX_VOICES = 1000
_STAGING = ".staging"


class DirectoryVoiceCatalog:
    """Every caller may use every voice here: whoever holds the API's token holds the whole directory."""

    def __init__(self, root: str | Path, *, max_voices: int = DEFAULT_MAX_VOICES,
                 on_changed: Callable[[], None] | None = None, refresh: Callable[[], None] | None = None,
                 refresh_every_s: float = 2.0) -> None:
        self.root = Path(root)
        self.max_voices = max_voices
        self._on_changed = on_changed
        self._refresh = refresh
        self._refresh_every_s = refresh_every_s
        self._refreshed_at: float | None = None
        self._lock = threading.Lock()  # one save at a time in this process: the count check and the rename

    def list(self, caller: str) -> list[SavedVoice]:
        self._refreshed()
        voices = (self._read(entry.name) for entry in self._entries())
        return sorted((voice for voice in voices if voice is not None), key=lambda voice: voice.created_at)

    def find(self, caller: str, name: str) -> SavedVoice | None:
        try:
            key = voice_id(name)
        except InvalidInput:
            return None  # no voice can have an invalid name
        voice = self._read(key)
        if voice is None and self._refreshed():
            voice = self._read(key)
        return voice

    def clip(self, voice: SavedVoice) -> bytes:
        return (self.root / voice.id / CLIP_FILE).read_bytes()

    def add(self, caller: str, name: str, clip_wav: bytes, ref_text: str | None, consent: Consent) -> SavedVoice:
        key = voice_id(name)
        voice = SavedVoice(id=key, name=name, created_at=consent.confirmed_at, ref_text=ref_text,
                           clip_sha256=hashlib.sha256(clip_wav).hexdigest(), consent=consent)
        with self._lock:
            if sum(1 for _ in self._entries()) >= self.max_voices:
                raise VoiceLimitReached(f"This server holds its limit of {self.max_voices} voices; no more can be "
                                        "saved.")
            staging = self.root / _STAGING / secrets.token_hex(8)
            staging.mkdir(parents=True)
            try:
                _write_synced(staging / CLIP_FILE, clip_wav)
                _write_synced(staging / RECORD_FILE, json.dumps(_to_json(voice), ensure_ascii=False).encode())
                _move_into_place(staging, self.root / key)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        log.info("voice_catalog.saved", voice_id=key, clip_sha256=voice.clip_sha256,
                 confirmed_by=consent.confirmed_by, consent=consent.statement_id)
        self._changed()
        return voice

    def delete(self, caller: str, name: str) -> SavedVoice | None:
        voice = self.find(caller, name)
        if voice is None:
            return None
        with self._lock:
            # Out of sight in one rename, then removed: a reader never finds half a voice.
            doomed = self.root / _STAGING / secrets.token_hex(8)
            doomed.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(self.root / voice.id, doomed)
            except FileNotFoundError:
                return None  # deleted meanwhile
            shutil.rmtree(doomed, ignore_errors=True)
            _sync_directory(self.root)
        log.info("voice_catalog.deleted", voice_id=voice.id, clip_sha256=voice.clip_sha256, by=caller)
        self._changed()
        return voice

    def _changed(self) -> None:
        if self._on_changed is not None:
            self._on_changed()

    def _entries(self) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self.root) as entries:
                return [entry for entry in entries if not entry.name.startswith(".") and entry.is_dir()]
        except FileNotFoundError:
            return []

    def _read(self, key: str) -> SavedVoice | None:
        path = self.root / key / RECORD_FILE
        try:
            with path.open("rb") as record:
                data = record.read(MAX_RECORD_BYTES + 1)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            if len(data) > MAX_RECORD_BYTES:
                raise ValueError(f"record over {MAX_RECORD_BYTES} bytes")
            voice = _from_json(json.loads(data))
            if voice.id != key:
                raise ValueError("record of another voice")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("voice_catalog.skipped", voice_id=key, reason=str(exc)[:200])
            return None
        return voice

    def _refreshed(self) -> bool:
        """Run `refresh` unless it ran within `refresh_every_s`; whether it ran. A failed refresh is logged and
        the directory is read as it is."""
        now = time.monotonic()
        if self._refresh is None or (self._refreshed_at is not None
                                     and now - self._refreshed_at < self._refresh_every_s):
            return False
        self._refreshed_at = now
        try:
            self._refresh()
        except Exception:
            log.warning("voice_catalog.refresh_failed", exc_info=True)
            return False
        return True


def _move_into_place(staging: Path, target: Path) -> None:
    """One rename: it fails when `target` exists, so of two saves of one name exactly one wins."""
    try:
        os.rename(staging, target)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise VoiceNameTaken(f"A voice called “{target.name}” exists already; choose another name.") from None
        raise
    _sync_directory(target.parent)


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_directory(path: Path) -> None:
    """Make the rename itself durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _to_json(voice: SavedVoice) -> dict[str, Any]:
    consent = voice.consent
    return {"id": voice.id, "name": voice.name, "created_at": voice.created_at.isoformat(), "ref_text": voice.ref_text,
            "clip_sha256": voice.clip_sha256,
            "consent": {"statement_id": consent.statement_id, "version": consent.version,
                        "statement": consent.statement, "confirmed_by": consent.confirmed_by,
                        "confirmed_at": consent.confirmed_at.isoformat()}}


def _from_json(data: dict[str, Any]) -> SavedVoice:
    consent = data["consent"]
    return SavedVoice(
        id=str(data["id"]), name=str(data["name"]), created_at=datetime.fromisoformat(data["created_at"]),
        ref_text=data["ref_text"] if isinstance(data["ref_text"], str) else None,
        clip_sha256=str(data["clip_sha256"]),
        consent=Consent(statement_id=str(consent["statement_id"]), version=int(consent["version"]),
                        statement=str(consent["statement"]), confirmed_by=str(consent["confirmed_by"]),
                        confirmed_at=datetime.fromisoformat(consent["confirmed_at"])))
