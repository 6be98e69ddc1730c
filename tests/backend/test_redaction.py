"""The one redaction rule: URLs lose credentials and query, token shapes and registered secrets are masked,
and the logging setup applies it to every line, tracebacks included."""

from __future__ import annotations

import logging

import pytest
import structlog

from backend.errors import BackendUnavailable
from backend.log_setup import setup_logging
from backend.redaction import MASK, redact, redact_url, register_secret


@pytest.mark.parametrize(("url", "shown"), [
    ("http://user:hunter2@backend.example:8080/v1/?api_key=k3y#frag", "http://backend.example:8080/v1/"),
    ("https://files.slack.com/files-pri/T1-F1/clip.m4a?t=xoxe-123", "https://files.slack.com/files-pri/T1-F1/clip.m4a"),
    ("http://[::1]:9000/clone", "http://[::1]:9000/clone"),
])
def test_urls_lose_userinfo_and_query(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact(f"cannot reach {url} now") == f"cannot reach {shown} now"


@pytest.mark.parametrize("secret", [
    "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
    "xapp-1-A0123-456-abcdef0123",
    "ak-AbCdEf0123456789",
    "as-AbCdEf0123456789",
    "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456",
])
def test_token_shapes_are_masked(secret: str) -> None:
    assert secret not in redact(f"token {secret} leaked")
    assert MASK in redact(f"token {secret} leaked")


@pytest.mark.parametrize("text", [
    "Authorization: Bearer s3cr3t-value", "{'authorization': 'Basic dXNlcjpwYXNz'}", "token=s3cr3t-value",
    "api_key: s3cr3t-value", "password=s3cr3t-value",
])
def test_named_secret_values_are_masked(text: str) -> None:
    assert "s3cr3t-value" not in redact(text) and "dXNlcjpwYXNz" not in redact(text)


def test_registered_secrets_are_masked_whatever_their_shape() -> None:
    register_secret("plain-looking-but-secret", None, "abc")  # too short values are ignored, not masked everywhere
    assert redact("value plain-looking-but-secret here") == f"value {MASK} here"
    assert redact("abc") == "abc"


def test_request_lines_lose_their_query() -> None:
    line = '127.0.0.1:5000 - "GET /health?api_key=k3y-value&x=1 HTTP/1.1" 200'
    assert redact(line) == '127.0.0.1:5000 - "GET /health HTTP/1.1" 200'


def test_ordinary_text_is_left_alone() -> None:
    text = "The voice service can't be reached right now (job J7K2QX); the token is checked first."
    assert redact(text) == text


def test_operator_text_is_redacted_and_message_is_not_touched() -> None:
    exc = BackendUnavailable("The voice service can't be reached right now.",
                             detail="http://u:pw1234@host.example/?key=abc refused the connection")
    assert exc.message == "The voice service can't be reached right now."
    assert "pw1234" not in exc.operator_text and "key=abc" not in exc.operator_text
    assert "host.example" in exc.operator_text


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_log_lines_and_tracebacks_are_redacted(fmt, capsys) -> None:
    register_secret("registered-secret-value")
    setup_logging("DEBUG", fmt)
    try:
        token = "Bearer bearer-token-value"  # a local variable: must not be printed with the traceback
        raise RuntimeError(f"failed calling http://u:pw@h.example/x?key=query-secret with {token}")
    except RuntimeError:
        structlog.get_logger("test").exception("call.failed", header="registered-secret-value")
    logging.getLogger("some.library").error("xoxb-1111111111-2222222222-AbCdEfGhIjKl in a stdlib line")
    err = capsys.readouterr().err
    for secret in ("registered-secret-value", "bearer-token-value", "query-secret", ":pw@", "xoxb-1111111111"):
        assert secret not in err
    assert "call.failed" in err and "RuntimeError" in err and "h.example/x" in err


def test_database_drivers_do_not_log_statement_parameters_even_at_debug(capsys) -> None:
    """The job journal's parameters hold Discord interaction tokens, unknown to the redactor until read back:
    the drivers' statement logs stay off whatever the level."""
    setup_logging("DEBUG", "console")
    for name in ("aiosqlite", "asyncpg", "sqlalchemy.engine"):
        logging.getLogger(name).debug("executing INSERT INTO journal VALUES (?) with token-%s-unregistered", name)
        logging.getLogger(name).info("[generated] INSERT parameters token-%s-info", name)
    logging.getLogger("alembic").info("Running upgrade  -> 0001")  # migrations stay visible
    err = capsys.readouterr().err
    assert "unregistered" not in err and "token-" not in err
    assert "Running upgrade" in err
