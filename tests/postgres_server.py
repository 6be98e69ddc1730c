"""A real PostgreSQL server for the tests: the installed server binaries (Debian's `postgresql` package, or any
`initdb`/`pg_ctl` on PATH) run a throwaway cluster in a temporary directory on a free port, with durability
switched off (the tests need speed, not crash safety). Each test gets a fresh database in it.

When the binaries are missing the tests that need the server are skipped on a developer's machine, and fail
in CI (`CI=1` or `VOICEBOT_REQUIRE_POSTGRES=1`, which `.ci/run` sets): CI must never pass without them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRED = any(os.environ.get(name, "").strip().lower() not in ("", "0", "false")
               for name in ("CI", "VOICEBOT_REQUIRE_POSTGRES"))
SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"


def server_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<newest>/bin."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
                      if p.parent.parent.name.isdigit() else 0)
    return versions[-1].parent if versions else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PostgresServer:
    """One running cluster; `url(database)` is a postgresql:// URL the bot's settings accept."""

    bin_dir: Path
    root: Path
    port: int
    run_as: str | None  # the server refuses to run as root: it runs as this user then

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://voicebot:secret-pw-123@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin_dir / args[0]), *args[1:]], user=self.run_as, check=check,
                              capture_output=True, text=True, timeout=120, cwd=self.root)

    def start(self) -> None:
        if self.run_as:
            shutil.chown(self.root, user=self.run_as)
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-U", "voicebot", "--auth=trust", "-E", "UTF8", "--no-sync")
        try:
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60", "-o",
                      f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 {SERVER_OPTIONS}", "start")
        except subprocess.CalledProcessError as exc:
            log = (self.root / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log}") from exc

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        name = f"test_{uuid.uuid4().hex[:16]}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "voicebot", name)
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)


def start_server() -> PostgresServer:
    bin_dir = server_binaries()
    if bin_dir is None:
        message = ("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's postgresql package "
                   "(`apt-get install -y postgresql`)")
        if REQUIRED:
            pytest.fail(message + " — CI must run the PostgreSQL tests", pytrace=False)
        pytest.skip(message)
    run_as = None
    if os.geteuid() == 0:
        run_as = next((name for name in ("postgres", "nobody") if _user_exists(name)), None)
    root = Path(tempfile.mkdtemp(prefix="voicebot-pg-"))
    server = PostgresServer(bin_dir, root, free_port(), run_as)
    server.start()
    return server


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
