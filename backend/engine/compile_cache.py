"""torch.compile's output kept between processes: Inductor's and Triton's cache folders, one pair per key.

A cold container spends most of its start compiling the fast decoder's frame for each shape (Inductor + Triton).
Pointing TORCHINDUCTOR_CACHE_DIR and TRITON_CACHE_DIR at a folder on the models volume makes the next process's
compiles cache hits. Measured on an H200 (benchmarks/RESULTS.md, cold start): these folders gave the first shape
in 4.9 s against 18.0 s with PyTorch's portable artifacts (`torch.compiler.save_cache_artifacts()`), which restore
Inductor's kernels but not Triton's own cache folder (its compiled kernel launchers, most likely).

The folders are only valid for the torch, Triton, CUDA and GPU that filled them and for the code and shapes that
were compiled, so the key hashes all of them (`environment()` plus the caller's `plan`). A process with other
versions gets an empty folder under its own key, compiles, and once its compile is complete replaces the stale
keys' folders. An entry whose metadata cannot be read is deleted and recompiled, never fatal.
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
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from backend.engine.config import EngineConfig

log = structlog.get_logger(__name__)
FAST_ENGINE_DIR = Path(__file__).resolve().parent / "fast"  # the code torch.compile sees
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


def open_compile_cache(config: EngineConfig, model: Any, device: str) -> CompileCache | None:
    """The compile cache for this model and decoder geometry under the configured folder, loaded into torch's
    caches; None without a folder or off CUDA (CPU runs are not compiled)."""
    if not config.compile_cache_dir or not device.startswith("cuda"):
        return None
    talker = model.config.talker_config.to_json_string()
    plan = {"talker": hashlib.sha256(talker.encode()).hexdigest()[:16], "dtype": str(model.dtype),
            "max_batch": config.fast_max_batch, "max_len": config.max_new_tokens_cap + config.fast_prompt_slots}
    cache = CompileCache(Path(config.compile_cache_dir) / config.variant, environment(device) | plan)
    cache.load()
    return cache


class CompileCache:
    """One folder (`root`, e.g. per variant on the models volume) holding the cache folders of the current key.

    `load()` before anything compiles; `save(complete=...)` after: a process that found a complete entry has
    nothing to add, any other marks how far it got (and, once complete, removes other keys' folders).
    """

    def __init__(self, root: Path, parts: Mapping[str, Any]) -> None:
        self.root = Path(root)
        self.parts = dict(parts)
        digest = hashlib.sha256(json.dumps(self.parts, sort_keys=True, default=str).encode()).hexdigest()[:20]
        self.key = f"torch{self.parts.get('torch', '?')}-{digest}".replace("+", "_")
        self.entry = self.root / self.key
        self.loaded_complete = False

    def load(self) -> bool:
        """Make this key's folders torch's compile caches (environment variables, read when compiling). True when
        an entry was there; a damaged one is removed and started afresh."""
        found = False
        if (self.entry / META).exists():
            try:
                self.loaded_complete = bool(json.loads((self.entry / META).read_text())["complete"])
                found = True
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.warning("compile_cache.unusable", key=self.key, error=repr(error))
                shutil.rmtree(self.entry, ignore_errors=True)
        (self.entry / "inductor").mkdir(parents=True, exist_ok=True)
        (self.entry / "triton").mkdir(parents=True, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(self.entry / "inductor")
        os.environ["TRITON_CACHE_DIR"] = str(self.entry / "triton")
        log.info("compile_cache.found" if found else "compile_cache.miss", key=self.key, root=str(self.root),
                 complete=self.loaded_complete)
        return found

    def save(self, *, complete: bool) -> bool:
        """Record how far this process compiled; once complete, drop other keys' folders. Skipped when a
        complete entry was loaded (nothing to add)."""
        if self.loaded_complete:
            return False
        self.entry.mkdir(parents=True, exist_ok=True)
        meta = {"parts": self.parts, "complete": complete, "saved_at": time.time()}
        _write_atomic(self.entry / META, json.dumps(meta, indent=1).encode())
        if complete:
            for other in self.root.iterdir():
                if other.is_dir() and other.name != self.key:
                    shutil.rmtree(other, ignore_errors=True)
                    log.info("compile_cache.replaced", stale=other.name, key=self.key)
        log.info("compile_cache.saved", key=self.key, complete=complete)
        return True


def _write_atomic(path: Path, data: bytes) -> None:
    """Readers (other containers on the same volume) see the old file or the new one, never half of one."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, path)
