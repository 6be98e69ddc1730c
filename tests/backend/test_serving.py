"""The serving environment (`backend.serving`): closed by default, an empty token is no token, unsafe settings
are refused without printing the token, and starting a server sets up redacting logs."""

from __future__ import annotations

import logging

import pytest

from backend.redaction import MASK, redact
from backend.serving import OPEN_ENV, TOKEN_ENV, ServingConfigError, ServingSettings, WebAccess
from tests.backend import fresh_logging

TOKEN = "serving-token-0123456789"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in (TOKEN_ENV, OPEN_ENV, "VOICEBOT_LOG_LEVEL", "VOICEBOT_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("env", "access"), [
    ({}, WebAccess.PROXY),
    ({TOKEN_ENV: ""}, WebAccess.PROXY),
    ({TOKEN_ENV: "   "}, WebAccess.PROXY),
    ({OPEN_ENV: "0"}, WebAccess.PROXY),
    ({OPEN_ENV: ""}, WebAccess.PROXY),
    ({TOKEN_ENV: f"  {TOKEN}\n"}, WebAccess.TOKEN),
    ({OPEN_ENV: "1"}, WebAccess.OPEN),
])
def test_closed_unless_a_token_or_the_open_flag_is_set(monkeypatch, env, access):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = ServingSettings()
    assert settings.web_access is access
    assert settings.token == (TOKEN if access is WebAccess.TOKEN else None)
    assert (OPEN_ENV in settings.container_env()) is (access is WebAccess.OPEN)


@pytest.mark.parametrize(("env", "message"), [
    ({TOKEN_ENV: "short-tok"}, "VOICEBOT_HTTP_TOKEN is shorter than 16 characters"),
    ({TOKEN_ENV: TOKEN, OPEN_ENV: "1"}, "not both"),
])
def test_unsafe_settings_are_refused_without_showing_the_token(monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ServingConfigError, match=message) as raised:
        ServingSettings()
    assert env[TOKEN_ENV] not in str(raised.value)


def test_start_sets_up_logging_and_masks_the_token(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("VOICEBOT_LOG_LEVEL", "DEBUG")
    with fresh_logging():
        ServingSettings().start()
        assert logging.getLogger().level == logging.DEBUG
        assert [handler.get_name() for handler in logging.getLogger().handlers][-1] == "voicebot"
    assert redact(f"sent {TOKEN} along") == f"sent {MASK} along"
