"""torch.compile's output kept between processes: PyTorch's portable cache artifacts, one file per key.

A cold container spends most of its start compiling the fast decoder's frame for each shape (Inductor + Triton).
`torch.compiler.save_cache_artifacts()` serialises every compile artifact this process produced or hit (Inductor
graphs with their Triton kernels, AOTAutograd entries, autotuning results) into one blob;
`torch.compiler.load_cache_artifacts()` writes such a blob back into the local caches, so the next process's
compiles are cache hits. One file on the models volume restores faster than the thousands of small files of
TORCHINDUCTOR_CACHE_DIR/TRITON_CACHE_DIR would (benchmarks/bench_coldstart.py measures both).

A blob is only valid for the torch, Triton, CUDA and GPU that made it and for the code and shapes that were
compiled, so the entry's key hashes all of them (`environment()` plus the caller's `plan`). A process with other
versions finds no entry under its key, compiles, and its save replaces the stale entries. An entry that cannot be
read or loaded is deleted and recompiled, never fatal.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)
FAST_ENGINE_DIR = Path(__file__).resolve().parent / "fast"  # the code torch.compile sees
ARTIFACTS = "artifacts.bin"
META = "meta.json"


def engine_fingerprint() -> str:
    """Hash of the fast engine's sources: editing what gets compiled invalidates the compiled kernels."""
    digest = hashlib.sha256()
    for path in sorted(FAST_ENGINE_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def environment(device: str) -> dict[str, str]:
    """What compiled kernels depend on besides the code: library versions and the GPU."""
    import torch

    parts = {"python": platform.python_version(), "torch": torch.__version__, "cuda": str(torch.version.cuda),
             "engine": engine_fingerprint()}
    try:
        import triton

        parts["triton"] = triton.__version__
    except ImportError:
        parts["triton"] = "none"
    if device.startswith("cuda"):
        major, minor = torch.cuda.get_device_capability(device)
        parts |= {"gpu": torch.cuda.get_device_name(device), "capability": f"{major}.{minor}"}
    return parts


class CompileCache:
    """One folder (`root`, e.g. per variant on the models volume) holding the entry of the current key.

    `load()` before compiling; `save(complete=...)` after: a process that loaded a complete entry has nothing to
    add, any other saves (again once all its shapes are compiled, since a blob holds everything recorded so far).
    """

    def __init__(self, root: Path, parts: Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.parts = dict(parts)
        digest = hashlib.sha256(json.dumps(self.parts, sort_keys=True, default=str).encode()).hexdigest()[:20]
        self.key = f"torch{self.parts.get('torch', '?')}-{digest}".replace("+", "_")
        self.entry = self.root / self.key
        self.loaded_complete = False

    def load(self) -> bool:
        """Feed this key's artifacts to torch's caches. False (after removing it) when the entry is missing,
        unreadable or rejected."""
        import torch

        path = self.entry / ARTIFACTS
        if not path.is_file():
            log.info("compile_cache.miss", key=self.key, root=str(self.root))
            return False
        started = time.perf_counter()
        try:
            meta = json.loads((self.entry / META).read_text())
            info = torch.compiler.load_cache_artifacts(path.read_bytes())
            if info is None:
                raise ValueError("torch could not deserialise the artifacts")
        except Exception as error:  # noqa: BLE001 - any unusable entry is recompiled and replaced
            log.warning("compile_cache.unusable", key=self.key, error=repr(error))
            shutil.rmtree(self.entry, ignore_errors=True)
            return False
        self.loaded_complete = bool(meta.get("complete"))
        log.info("compile_cache.loaded", key=self.key, complete=self.loaded_complete, bytes=path.stat().st_size,
                 seconds=round(time.perf_counter() - started, 2))
        return True

    def save(self, *, complete: bool) -> bool:
        """Write what this process compiled or hit as the key's entry and drop other keys' entries. Skipped when
        a complete entry was loaded (nothing to add) or nothing was compiled."""
        import torch

        if self.loaded_complete:
            return False
        saved = torch.compiler.save_cache_artifacts()
        if saved is None:
            return False
        data, _ = saved
        self.entry.mkdir(parents=True, exist_ok=True)
        meta = {"parts": self.parts, "complete": complete, "bytes": len(data), "saved_at": time.time()}
        _write_atomic(self.entry / ARTIFACTS, data)
        _write_atomic(self.entry / META, json.dumps(meta, indent=1).encode())
        for other in self.root.iterdir():
            if other.is_dir() and other.name != self.key:
                shutil.rmtree(other, ignore_errors=True)
                log.info("compile_cache.replaced", stale=other.name, key=self.key)
        log.info("compile_cache.saved", key=self.key, complete=complete, bytes=len(data))
        return True


def _write_atomic(path: Path, data: bytes) -> None:
    """Readers (other containers on the same volume) see the old file or the new one, never half of one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, path)
