"""No secret reaches a log line or a Slack message: not the bot token, not the backend URL's password or query,
not the backend's token; and `voicebot slack` registers its own secrets for redaction before anything runs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

import bot.slack.runner as runner
from backend.clients.http_client import HttpBackend
from backend.redaction import MASK, redact
from backend.settings import BackendSettings
from bot.slack import run_slack
from tests.clips import sine_clip
from tests.slack.conftest import form_values
from tests.slack.fake_slack import BOT_TOKEN

PASSWORD, QUERY_KEY, HTTP_TOKEN = "s3cret-pass", "query-key-value", "backend-token-value"
# Nothing listens on port 9 (discard): the backend is down.
BACKEND_URL = f"http://voicebot:{PASSWORD}@127.0.0.1:9/?key={QUERY_KEY}"


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """Every log line as `setup_logging`'s handler writes it (formatted, redacted)."""
    voicebot = next(h for h in logging.getLogger().handlers if h.get_name() == "voicebot")
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(voicebot.formatter)
    logging.getLogger().addHandler(handler)
    yield captured
    logging.getLogger().removeHandler(handler)


async def test_a_failing_clone_leaks_no_secret(slack, log_text):
    settings = BackendSettings(backend="http", http_url=BACKEND_URL, http_token=HTTP_TOKEN, timeout_s=5,
                               _env_file=None)
    h = await slack(HttpBackend(settings))
    view = await h.open_form()
    clip = h.fake.host_file("voice.wav", sine_clip())
    await h.dispatch(h.submission(view, form_values(files=[clip])))
    await h.settle()
    (answer,) = h.responses()
    assert answer["text"].startswith(":x: Job ")  # the user was told, with the job id

    sent_to_slack = "\n".join(c.raw.decode("utf-8", "replace") + json.dumps(c.args) for c in h.fake.calls
                              if not c.path.startswith("/upload/"))
    logs = log_text.getvalue()
    assert "job.failed" in logs
    for secret in (BOT_TOKEN, PASSWORD, QUERY_KEY, HTTP_TOKEN):
        assert secret not in sent_to_slack, secret
        assert secret not in logs, secret


def test_startup_registers_the_slack_secrets(monkeypatch, tmp_path):
    signing_secret, app_token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "xapp-1-A1-123-abcdef"
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-startup-token")
    monkeypatch.setenv("SLACK_APP_TOKEN", app_token)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", signing_secret)
    monkeypatch.delenv("SLACK_MODE", raising=False)
    monkeypatch.setattr(runner, "setup_logging", lambda *args, **kwargs: None)

    async def main(*args, **kwargs) -> None:
        return None

    monkeypatch.setattr(runner, "main", main)
    run_slack()
    assert redact(f"secret {signing_secret} in a line") == f"secret {MASK} in a line"
