"""CI never passes without PostgreSQL: the server fixture fails, rather than skips, when CI asks for it."""

from __future__ import annotations

import pytest

from tests import postgres_server


@pytest.mark.parametrize("required", [True, False])
def test_missing_server_binaries_fail_in_ci_and_skip_elsewhere(monkeypatch, required):
    monkeypatch.setattr(postgres_server, "server_binaries", lambda: None)
    monkeypatch.setattr(postgres_server, "REQUIRED", required)
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome, match="apt-get install -y postgresql"):
        postgres_server.start_server()
