"""`voicebot db upgrade|downgrade`: the schema moved on the configured database, and a database that cannot be
reached named without its password."""

from __future__ import annotations

import sqlite3

from typer.testing import CliRunner

from bot.cli import app

runner = CliRunner()


def tables(path) -> set[str]:
    with sqlite3.connect(path) as connection:
        return {row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")}


def test_upgrade_then_downgrade_to_empty(tmp_path):
    env = {"VOICEBOT_DATA_DIR": str(tmp_path), "VOICEBOT_DATABASE_URL": ""}
    result = runner.invoke(app, ["db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert "database at revision 0003" in result.output
    assert "voices" in tables(tmp_path / "voicebot.db")
    result = runner.invoke(app, ["db", "downgrade", "base"], env=env)
    assert result.exit_code == 0, result.output
    assert "base (empty)" in result.output
    assert "voices" not in tables(tmp_path / "voicebot.db")


def test_an_unreachable_database_fails_without_its_password(tmp_path):
    env = {"VOICEBOT_DATA_DIR": str(tmp_path), "VOICEBOT_DATABASE_TIMEOUT_S": "2",
           "VOICEBOT_DATABASE_URL": "postgresql://voicebot:hunter2-secret@127.0.0.1:9/voicebot"}
    result = runner.invoke(app, ["db", "upgrade"], env=env)
    assert result.exit_code == 1
    assert "hunter2-secret" not in result.output
    assert "127.0.0.1" in result.output  # the operator sees which database
