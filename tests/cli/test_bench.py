"""`voicebot bench` offline: two local backends side by side, cold then warm calls, JSON and plot written."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from backend.settings import BackendSettings
from bot.bench import PLAN_TEXTS, default_targets, target_settings
from bot.cli import app


def test_plan_lengths_match_the_deployment_plan():
    assert [len(text) for text in PLAN_TEXTS.values()] == [12, 44, 187, 506]


def test_targets_parse_into_backend_settings():
    base = BackendSettings(backend="local", modal_variants=["fa2", "sdpa"])
    local, variant = target_settings("local:eager,stock", base)
    assert (local.backend, local.attention, local.engine_mode, variant) == ("local", "eager", "stock", None)
    modal, variant = target_settings("modal:sdpa", base)
    assert (modal.backend, variant) == ("modal", "sdpa")
    http, _ = target_settings("http:https://tts.example", base)
    assert (http.backend, http.http_url) == ("http", "https://tts.example")
    with pytest.raises(ValueError, match="unknown local option 'turbo'"):
        target_settings("local:turbo", base)
    with pytest.raises(ValueError, match="unknown bench target"):
        target_settings("ftp:x", base)
    assert default_targets(base.model_copy(update={"backend": "modal"})) == ["modal:fa2", "modal:sdpa"]
    assert default_targets(base) == ["local"]


def test_bench_compares_two_local_backends_and_writes_json_and_plot(tmp_path, tiny_checkpoint):
    out = tmp_path / "bench"
    result = CliRunner().invoke(
        app, ["bench", "--target", "local:sdpa", "--target", "local:eager", "--repeats", "2",
              "--lengths", "tiny,short", "--out", str(out)],
        env={"VOICEBOT_MODEL": str(tiny_checkpoint), "VOICEBOT_BACKEND": "local"})
    assert result.exit_code == 0, result.output
    data = json.loads((out / "bench.json").read_text())
    calls = data["calls"]
    assert len(calls) == 2 * (1 + 2 * 2)  # per target: one cold call, then 2 warm repeats of 2 lengths
    assert [c["run"] for c in calls if c["target"] == "local:eager"][0] == "cold"
    assert {c["attention"] for c in calls if c["target"] == "local:eager"} == {"eager"}
    assert {c["attention"] for c in calls if c["target"] == "local:sdpa"} == {"sdpa"}
    assert all(c["audio_seconds"] > 0 and c["wall_s"] > 0 for c in calls)
    summary = {(row["target"], row["length"]): row for row in data["summary"]}
    assert set(summary) == {(t, n) for t in ("local:sdpa", "local:eager") for n in ("tiny", "short")}
    assert all(row["runs"] == 2 for row in summary.values())
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "local:eager" in result.output


def test_bench_rejects_unknown_lengths_and_targets(tmp_path):
    runner = CliRunner()
    unknown_length = runner.invoke(app, ["bench", "--lengths", "huge", "--out", str(tmp_path)])
    assert unknown_length.exit_code == 2 and "huge" in unknown_length.output
    unknown_target = runner.invoke(app, ["bench", "--target", "carrier-pigeon", "--lengths", "tiny",
                                         "--out", str(tmp_path)])
    assert unknown_target.exit_code == 1 and "carrier-pigeon" in unknown_target.output
