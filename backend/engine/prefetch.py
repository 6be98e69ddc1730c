"""Read a checkpoint into the page cache on a background thread while the process is still importing.

A new container spends its first ~15 s importing torch, transformers and qwen-tts on one interpreter thread
while the disk idles; then `from_pretrained` reads 4 GB of weights, 2-3 s more with a cold page cache. Reading
the files meanwhile on a thread (file reads release the GIL) turns that into page-cache hits. A plain read, not
`posix_fadvise(WILLNEED)`: network and FUSE filesystems such as Modal volumes may ignore the advice.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)
CHUNK_BYTES = 16 * 1024 * 1024
_started: dict[Path, threading.Thread] = {}
_lock = threading.Lock()


def prefetch_checkpoint(directory: str | Path) -> threading.Thread | None:
    """Start reading every file under `directory` (largest first: the weights) on a daemon thread, once per
    directory and process (a later call returns the same thread); None when there is no such directory (the
    engine's load reports that)."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        return None
    root = root.resolve()
    with _lock:
        if root not in _started:
            _started[root] = threading.Thread(target=_read_all, args=(root,), name="checkpoint-prefetch", daemon=True)
            _started[root].start()
        return _started[root]


def _read_all(root: Path) -> None:
    files = sorted((path for path in root.rglob("*") if path.is_file()), key=lambda path: -path.stat().st_size)
    buffer = bytearray(CHUNK_BYTES)
    total = 0
    for path in files:
        try:
            with open(path, "rb", buffering=0) as handle:
                while count := handle.readinto(buffer):
                    total += count
        except OSError as error:  # a file that vanished or cannot be read: from_pretrained will say so
            log.debug("prefetch.skipped", file=path.name, error=os.strerror(error.errno or 0))
    log.info("prefetch.done", files=len(files), mib=round(total / 2**20))
