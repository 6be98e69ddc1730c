"""The `ClipStore` on disk: `<data_dir>/clips/ab/abcdef….wav`, named by the SHA-256 of the bytes.

Writes go to a temporary file in the same directory, are flushed to disk, then renamed into place, so a
crash never leaves a half-written clip under a real name, and two processes writing the same clip both
succeed. Reads check the size bound before reading and the digest after, so a damaged or replaced file is
reported as gone rather than sent to the backend. Names from outside (`get("../../x")`) are refused by
their shape. File I/O runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import structlog

from backend.errors import InvalidInput
from backend.intake import MIB
from commands.storage.errors import StorageUnavailable

log = structlog.get_logger(__name__)

# A stored file is a normalised reference clip (at most the intake's 30 s of 16-bit mono) or a finished result
# kept for delivery (minutes of 24 kHz speech): far below this.
MAX_CLIP_BYTES = 64 * MIB
_DIGEST = re.compile(r"[0-9a-f]{64}")
T = TypeVar("T")


class FileClipStore:
    def __init__(self, directory: Path, *, max_bytes: int = MAX_CLIP_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def path(self, sha256: str) -> Path:
        """Where the clip lives; `LookupError` for anything that is not a lowercase hex SHA-256."""
        if not isinstance(sha256, str) or not _DIGEST.fullmatch(sha256):
            raise LookupError("not a clip digest")
        return self.directory / sha256[:2] / f"{sha256}.wav"

    async def put(self, wav: bytes) -> str:
        if len(wav) > self.max_bytes:
            raise InvalidInput(f"The clip is too large to keep (more than {self.max_bytes // MIB} MiB).",
                               code="clip_too_large")
        sha256 = hashlib.sha256(wav).hexdigest()
        await self._io("storing a clip", self._write, self.path(sha256), wav)
        return sha256

    async def get(self, sha256: str) -> bytes:
        data = await self._io("reading a clip", self._read, self.path(sha256))
        if data is None or hashlib.sha256(data).hexdigest() != sha256:
            if data is not None:
                log.warning("clips.damaged", sha256=sha256)
            raise LookupError(f"clip {sha256} is gone")
        return data

    async def delete(self, sha256: str) -> bool:
        try:
            path = self.path(sha256)
        except LookupError:
            return False
        return await self._io("deleting a clip", self._unlink, path)

    async def _io(self, operation: str, function: Callable[..., T], *args: object) -> T:
        try:
            return await asyncio.to_thread(function, *args)
        except OSError as exc:
            detail = f"{operation} in {self.directory} failed: {type(exc).__name__}: {exc.strerror or exc}"
            log.warning("storage.unavailable", operation=operation, detail=detail)
            raise StorageUnavailable(detail=detail) from exc

    def _write(self, path: Path, wav: bytes) -> None:
        if path.is_file() and path.stat().st_size == len(wav):
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # voices are personal data: this user only
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", suffix=".wav", delete=False)
        try:
            with handle:
                handle.write(wav)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(handle.name, path)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise

    def _read(self, path: Path) -> bytes | None:
        try:
            with path.open("rb") as handle:
                data = handle.read(self.max_bytes + 1)
        except FileNotFoundError:
            return None
        return None if len(data) > self.max_bytes else data

    @staticmethod
    def _unlink(path: Path) -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True
