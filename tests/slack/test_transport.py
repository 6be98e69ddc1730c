"""How requests reach the app: signed HTTP (bad signatures and replays refused), Socket Mode (the default),
and `voicebot slack`'s startup checks and graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse

import aiohttp
import pytest
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

import bot.slack.runner as runner
from bot.slack import run_slack
from bot.slack.app import build_app
from bot.slack.runner import serve, start_transport
from bot.slack.settings import SlackSettings
from bot.slack.slack_errors import SlackProblem
from commands.settings import CommandSettings
from tests.clips import sine_clip
from tests.fakes import FakeBackend
from tests.slack.conftest import form_request, form_values, sign
from tests.slack.fake_slack import APP_TOKEN, BOT_TOKEN, BOT_USER_ID, SIGNING_SECRET, FakeSlack


async def test_bad_signature_and_stale_timestamp_are_rejected(slack):
    h = await slack(FakeBackend())
    body = urllib.parse.urlencode(h.slash_fields("/clone"))
    headers = sign(body)
    forged = {"content-type": ["application/x-www-form-urlencoded"],
              "x-slack-request-timestamp": [headers["x-slack-request-timestamp"]],
              "x-slack-signature": ["v0=" + "0" * 64]}
    assert (await h.dispatch(AsyncBoltRequest(body=body, headers=forged))).status == 401
    wrong_secret = form_request(h.slash_fields("/clone"), secret="not-the-secret")
    assert (await h.dispatch(wrong_secret)).status == 401
    stale = form_request(h.slash_fields("/clone"), timestamp=int(time.time()) - 6 * 60)  # replay window: 5 min
    assert (await h.dispatch(stale)).status == 401
    unsigned = AsyncBoltRequest(body=body, headers={"content-type": ["application/x-www-form-urlencoded"]})
    assert (await h.dispatch(unsigned)).status == 401
    await asyncio.sleep(0.05)
    assert not h.fake.of("views.open") and not h.fake.of("auth.test")


async def test_socket_mode_requests_skip_the_signature(slack):
    """What the Socket Mode handler dispatches: `mode="socket_mode"`, a dict body, no signature headers."""
    h = await slack(FakeBackend())
    response = await h.dispatch(AsyncBoltRequest(mode="socket_mode", body=h.slash_fields("/clone")))
    assert response.status == 200
    await h.fake.wait_for("views.open")


async def test_http_mode_serves_signed_requests(make_services):
    fake = await FakeSlack().start()
    services = await make_services(FakeBackend(), bot_token=BOT_TOKEN)
    app = build_app(services, AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url), SIGNING_SECRET)
    settings = SlackSettings(mode="http", host="127.0.0.1", port=0, bot_token=BOT_TOKEN,
                             signing_secret=SIGNING_SECRET, _env_file=None)
    transport = await start_transport(app, settings)
    url = f"http://127.0.0.1:{transport.port}/slack/events"
    fields = {"command": "/clone", "user_id": "U1", "channel_id": "C1", "team_id": "T1", "trigger_id": "1.2.3",
              "response_url": f"{fake.base}/response_url/1", "text": ""}
    body = urllib.parse.urlencode(fields)
    try:
        async with aiohttp.ClientSession() as session:
            headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == 200
            forged = {**headers, "x-slack-signature": "v0=" + "f" * 64}
            async with session.post(url, data=body, headers=forged) as response:
                assert response.status == 401
        await fake.wait_for("views.open")
        assert len(fake.of("views.open")) == 1
    finally:
        await transport.close()
        await fake.close()


def socket_settings(fake: FakeSlack, **overrides) -> SlackSettings:
    return SlackSettings(bot_token=BOT_TOKEN, app_token=APP_TOKEN, api_url=fake.api_url, _env_file=None,
                         **overrides)


def envelope(kind: str, payload: dict, envelope_id: str) -> dict:
    return {"envelope_id": envelope_id, "type": kind, "payload": payload,
            "accepts_response_payload": kind != "events_api", "retry_attempt": 0, "retry_reason": ""}


def mention_body(event_id: str, user: str, ts: str, clip: dict) -> dict:
    event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER_ID}> Hello {user}", "ts": ts,
             "channel": "C1", "event_ts": ts, "files": [clip]}
    return {"token": "legacy", "team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": event_id,
            "event_time": int(time.time()), "event": event,
            "authorizations": [{"team_id": "T1", "user_id": BOT_USER_ID, "is_bot": True,
                                "is_enterprise_install": False}]}


async def test_socket_mode_end_to_end_with_graceful_shutdown(make_services):
    """`serve` over a real WebSocket: envelopes are acknowledged and handled; on stop, the running job still
    uploads its audio and the queued one is told it will continue when the bot is back (it is journaled)."""
    fake = await FakeSlack().start()
    backend = FakeBackend(hold=True)
    settings = CommandSettings(cooldown_s=0, max_concurrent_jobs=1, _env_file=None)
    services = await make_services(backend, settings, bot_token=BOT_TOKEN, file_origins=fake.file_origins)
    stop = asyncio.Event()
    serving = asyncio.create_task(serve(socket_settings(fake), services, grace_s=10, stop=stop))
    try:
        slash = {"command": "/clone", "user_id": "U1", "channel_id": "C1", "team_id": "T1", "trigger_id": "1.2.3",
                 "response_url": f"{fake.base}/response_url/1", "text": "", "api_app_id": "A1"}
        ack = await fake.push_envelope(envelope("slash_commands", slash, "E1"))
        assert ack == {"envelope_id": "E1"}
        view = (await fake.wait_for("views.open")).args["view"]
        assert fake.of("apps.connections.open")[0].auth == f"Bearer {APP_TOKEN}"

        # a form with problems: the errors travel back in the envelope's acknowledgement
        submission = {"type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"},
                      "api_app_id": "A1", "trigger_id": "1.2.4",
                      "view": {**view, "id": "V1", "state": {"values": form_values("", files=[])}}}
        ack = await fake.push_envelope(envelope("interactive", submission, "E1b"))
        assert ack["payload"]["response_action"] == "errors"
        assert set(ack["payload"]["errors"]) == {"reference", "text"}

        clip = fake.host_file("voice.wav", sine_clip())
        await fake.push_envelope(envelope("events_api", mention_body("Ev1", "U1", "1.1", clip), "E2"))
        running = await backend.next_call()
        await fake.push_envelope(envelope("events_api", mention_body("Ev2", "U2", "1.2", clip), "E3"))
        await fake.wait_for(lambda c: c.method == "chat.postMessage" and "<@U2>" in c.args["text"])

        stop.set()
        told = await fake.wait_for(lambda c: c.method == "chat.postEphemeral" and c.args["user"] == "U2")
        job_id = told.args["text"].split("job ", 1)[1].split(" ", 1)[0]  # journaled: it continues after the restart
        assert f"The bot is restarting; job {job_id} will continue when it is back." in told.args["text"]
        assert not serving.done()  # still draining: the running job may finish
        running.release()
        await asyncio.wait_for(serving, 10)
        complete = fake.of("files.completeUploadExternal")
        assert len(complete) == 1 and complete[0].args["thread_ts"] == "1.1"
        assert backend.closed
    finally:
        stop.set()
        if not serving.done():
            serving.cancel()
        await fake.close()


async def test_serve_stops_with_a_clear_error_on_a_bad_token(make_services):
    fake = await FakeSlack().start()
    services = await make_services(FakeBackend(), bot_token="xoxb-bad")
    settings = SlackSettings(bot_token="xoxb-bad", app_token=APP_TOKEN, api_url=fake.api_url, _env_file=None)
    try:
        with pytest.raises(SlackProblem) as problem:
            await serve(settings, services, stop=asyncio.Event())
        assert "SLACK_BOT_TOKEN" in problem.value.operator_text and "invalid_auth" in problem.value.operator_text
    finally:
        await fake.close()


@pytest.fixture
def no_slack_env(monkeypatch, tmp_path):
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setattr(runner, "setup_logging", lambda *args, **kwargs: None)
    monkeypatch.setattr(runner, "serve", pytest.fail)  # must not get that far


def test_missing_tokens_in_socket_mode(no_slack_env, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_slack()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "cannot start in socket mode" in err
    assert "SLACK_BOT_TOKEN (xoxb-" in err and "SLACK_APP_TOKEN (xapp-" in err and "connections:write" in err
    assert "SLACK_SIGNING_SECRET" not in err and "README" in err


def test_missing_secret_in_http_mode(no_slack_env, monkeypatch, capsys):
    monkeypatch.setenv("SLACK_MODE", "http")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    with pytest.raises(SystemExit) as exit_info:
        run_slack()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "SLACK_SIGNING_SECRET" in err and "SLACK_BOT_TOKEN" not in err and "SLACK_APP_TOKEN" not in err


def test_a_user_token_is_not_a_bot_token(no_slack_env, monkeypatch, capsys):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxp-user-token")
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    with pytest.raises(SystemExit):
        run_slack()
    assert "SLACK_BOT_TOKEN (xoxb-" in capsys.readouterr().err


def test_settings_read_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLACK_MODE", "http")
    monkeypatch.setenv("SLACK_PORT", "8080")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cret")
    settings = SlackSettings()
    assert (settings.mode, settings.port, settings.path, settings.missing()) == ("http", 8080, "/slack/events", [])
    assert "s3cret" not in repr(settings)  # secrets never reach logs
    assert json.loads(settings.model_dump_json())["signing_secret"] == "**********"


def test_an_unreachable_database_stops_the_bot_with_the_reason(no_slack_env, monkeypatch, tmp_path, capsys):
    """The voice library's database is opened before the bot connects: when it cannot be, the bot stops with
    status 1 and what to fix (which database, without its password), never half-started."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    monkeypatch.setenv("VOICEBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VOICEBOT_DATABASE_URL", "postgresql://voicebot:pw-of-db@127.0.0.1:9/voices")
    monkeypatch.setenv("VOICEBOT_DATABASE_TIMEOUT_S", "2")
    with pytest.raises(SystemExit) as exit_info:
        run_slack()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "127.0.0.1:9/voices" in err and "pw-of-db" not in err
