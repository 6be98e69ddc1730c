"""`voicebot detect FILE`: the verdict in words and in the exit status, through the local backend (which checks
without loading any TTS model: the model setting below does not exist)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from backend.watermark import CHECK_LIMITS
from bot.cli import app
from tests.backend import speech_like

runner = CliRunner()
ENV = {"VOICEBOT_BACKEND": "local", "VOICEBOT_MODEL": "/nonexistent/checkpoint", "VOICEBOT_DEVICE": "cpu"}


@pytest.mark.parametrize(("marked", "status", "words"), [(True, 0, "carries voicebot's watermark"),
                                                          (False, 1, "No voicebot watermark found")])
def test_detect_says_whether_the_bot_made_a_clip(tmp_path, marked, status, words):
    clip = tmp_path / "clip.wav"
    clip.write_bytes(speech_like(marked=marked))
    result = runner.invoke(app, ["detect", str(clip)], env=ENV)
    assert result.exit_code == status, result.output
    assert words in " ".join(result.output.split())


@pytest.mark.parametrize(("content", "words"), [(b"just some text, not audio at all", "looks like text, not audio"),
                                                (bytes(CHECK_LIMITS.max_bytes + 10), "the limit is 16 MiB")])
def test_detect_refuses_what_it_cannot_check_by_the_file_name(tmp_path, content, words):
    clip = tmp_path / "notes.txt"
    clip.write_bytes(content)
    result = runner.invoke(app, ["detect", str(clip)], env=ENV)
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and words in output and "notes.txt" in output, result.output
