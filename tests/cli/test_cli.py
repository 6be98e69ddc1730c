"""`voicebot` from the terminal: the offline demo, `clone` and `checkpoint`, through typer's runner and the real
local engine on the tiny checkpoint."""

from __future__ import annotations

import io

import pytest
import soundfile as sf
from typer.testing import CliRunner

from bot.cli import app

runner = CliRunner()


@pytest.fixture
def demo_env(tiny_checkpoint) -> dict[str, str]:
    """The demo's checkpoint directory pointed at the session's tiny checkpoint (same preset, already built)."""
    return {"VOICEBOT_CHECKPOINT_DIR": str(tiny_checkpoint.parent), "VOICEBOT_BACKEND": "local"}


def read_wav(path) -> tuple[int, int, float]:
    info = sf.info(io.BytesIO(path.read_bytes()))
    return info.samplerate, info.channels, info.duration


def test_demo_runs_a_full_clone_offline_and_says_the_weights_are_random(tmp_path, demo_env):
    out = tmp_path / "demo.wav"
    result = runner.invoke(app, ["demo", "--out", str(out)], env=demo_env)
    assert result.exit_code == 0, result.output
    rate, channels, seconds = read_wav(out)
    assert (rate, channels) == (24_000, 1) and seconds > 1
    for label in ("Voice clone", "Generation", "Total", "Real-time factor", "Queue wait"):
        assert label in result.output
    assert "RANDOM weights" in result.output
    assert "VOICEBOT_MODEL=Qwen/Qwen3-TTS-12Hz-1.7B-Base" in result.output
    assert "permission" in result.output  # the consent line, as under every bot result


def test_clone_writes_the_wav_for_a_clip_and_text(tmp_path, tiny_checkpoint, clip):
    ref = tmp_path / "voice.wav"
    ref.write_bytes(clip)
    out = tmp_path / "out.wav"
    result = runner.invoke(app, ["clone", "--ref", str(ref), "--text", "Hi.", "--language", "english",
                                 "--model", str(tiny_checkpoint), "--seed", "3", "-o", str(out)],
                           env={"VOICEBOT_BACKEND": "local"})
    assert result.exit_code == 0, result.output
    assert read_wav(out)[0] == 24_000
    assert "English" in result.output  # the language as normalised by the commands layer


@pytest.mark.parametrize(("content", "text", "message"), [
    (b"%PDF-1.7 not a clip", "Hello", "PDF"),
    (None, "", "empty"),
    (None, "x" * 5001, "characters"),
])
def test_clone_refuses_bad_input_with_its_message_and_no_file(tmp_path, tiny_checkpoint, clip, content, text,
                                                             message):
    ref = tmp_path / "upload.bin"
    ref.write_bytes(content if content is not None else clip)
    out = tmp_path / "out.wav"
    result = runner.invoke(app, ["clone", "--ref", str(ref), "--text", text, "--model", str(tiny_checkpoint),
                                 "-o", str(out)], env={"VOICEBOT_BACKEND": "local"})
    assert result.exit_code == 1
    assert message.lower() in result.output.lower()
    assert not out.exists()


def test_clone_names_the_valid_languages_for_an_unknown_one(tmp_path, tiny_checkpoint, clip):
    ref = tmp_path / "voice.wav"
    ref.write_bytes(clip)
    result = runner.invoke(app, ["clone", "--ref", str(ref), "--text", "Hi", "--language", "Klingon",
                                 "--model", str(tiny_checkpoint), "-o", str(tmp_path / "o.wav")],
                           env={"VOICEBOT_BACKEND": "local"})
    assert result.exit_code == 1
    assert "Klingon" in result.output and "English" in result.output


def test_checkpoint_writes_a_loadable_layout_and_rejects_unknown_presets(tmp_path):
    from backend.engine.checkpoint import is_checkpoint

    out = tmp_path / "tiny"
    result = runner.invoke(app, ["checkpoint", "tiny", str(out), "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert is_checkpoint(out)
    refused = runner.invoke(app, ["checkpoint", "7b", str(tmp_path / "big")])
    assert refused.exit_code == 2 and "tiny, 0.6b, 1.7b" in refused.output


def test_discord_without_a_token_explains_how_to_get_one(monkeypatch):
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    result = runner.invoke(app, ["discord"], env={"DISCORD_TOKEN": ""})
    assert result.exit_code == 2
    assert "DISCORD_TOKEN is not set" in result.output
