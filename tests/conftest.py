"""Shared fixtures: the tiny random-weight checkpoint, one engine on it, reference clips, and the databases
(SQLite in the test's directory, and a real PostgreSQL server started once per session)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.clips import sine_clip  # noqa: E402

CACHE = Path(os.environ.get("VOICEBOT_TEST_CACHE", Path(__file__).resolve().parent.parent / ".pytest_cache" / "voicebot"))


@pytest.fixture(scope="session")
def tiny_checkpoint() -> Path:
    """Build the tiny checkpoint once per machine (about 7 s) through the project's own writer."""
    from backend.engine.checkpoint import build_random_checkpoint, is_checkpoint

    path = CACHE / "tiny"
    if not is_checkpoint(path):
        build_random_checkpoint("tiny", path)
    return path


@pytest.fixture(scope="session")
def engine(tiny_checkpoint):
    """One loaded engine for the whole session (the first voice prompt pays librosa's JIT warm-up once)."""
    from backend.engine import Engine, EngineConfig

    instance = Engine(EngineConfig(model=str(tiny_checkpoint), variant="test"))
    instance.load()
    return instance


@pytest.fixture
def clip() -> bytes:
    """A valid 3 s WAV reference clip at 16 kHz."""
    return sine_clip(seconds=3.0, sample_rate=16_000)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the session (`tests.postgres_server`); skipped without the binaries, except
    in CI where that fails."""
    from tests.postgres_server import start_server

    server = start_server()
    yield server
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_settings(request, tmp_path):
    """CommandSettings on an empty database of each kind: the test runs once per kind."""
    from commands.settings import CommandSettings

    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return CommandSettings(_env_file=None, data_dir=tmp_path, database_url=url, database_timeout_s=10)


@pytest.fixture
async def storage(database_settings):
    """The stores of one process, opened (and migrated) on `database_settings`."""
    from commands.storage.sql import open_storage

    opened = await open_storage(database_settings)
    yield opened
    await opened.close()
