"""A correctly signed request replayed within Slack's 5-minute signature window is acknowledged and ignored:
one form, one job, one upload. A form that was refused can still be corrected and sent again."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest

from commands.settings import CommandSettings
from tests.clips import sine_clip
from tests.fakes import FakeBackend
from tests.slack.conftest import form_values, sign


def replayable(fields: dict[str, Any]) -> list[AsyncBoltRequest]:
    """The same signed form request twice, byte for byte (headers included), as an attacker would resend it."""
    body = urllib.parse.urlencode(fields)
    headers = {"content-type": ["application/x-www-form-urlencoded"], **{k: [v] for k, v in sign(body).items()}}
    return [AsyncBoltRequest(body=body, headers=headers) for _ in range(2)]


async def test_a_replayed_view_submission_runs_one_job(slack):
    backend = FakeBackend()
    h = await slack(backend, CommandSettings(cooldown_s=0, _env_file=None))
    view = await h.open_form()
    clip = h.fake.host_file("voice.wav", sine_clip())
    first, replay = replayable({"payload": json.dumps(h.submission_payload(view, form_values(files=[clip])))})
    assert (await h.dispatch(first)).body == ""
    await h.settle()  # the job is done and the cooldown (none here) is over when the replay arrives
    response = await h.dispatch(replay)
    assert (response.status, response.body) == (200, "")
    await h.settle()
    assert len(backend.calls) == 1
    assert len(h.fake.of("files.completeUploadExternal")) == 1 and len(h.fake.of("chat.postMessage")) == 1


async def test_a_closed_form_cannot_be_submitted_again(slack):
    """Even with a fresh trigger id: once the form was accepted (and closed), its view id is spent."""
    backend = FakeBackend()
    h = await slack(backend)
    view = await h.open_form()
    clip = h.fake.host_file("voice.wav", sine_clip())
    await h.dispatch(h.submission(view, form_values(files=[clip])))
    response = await h.dispatch(h.submission(view, form_values("Another text", files=[clip])))
    assert (response.status, response.body) == (200, "")
    await h.settle()
    assert [call.text for call in backend.calls] == ["Hello from Slack"]


async def test_a_refused_form_can_be_corrected_and_sent_again(slack):
    backend = FakeBackend()
    h = await slack(backend)
    view = await h.open_form()
    clip = h.fake.host_file("voice.wav", sine_clip())
    refused = json.loads((await h.dispatch(h.submission(view, form_values("  ", files=[clip])))).body)
    assert refused["response_action"] == "errors"
    assert (await h.dispatch(h.submission(view, form_values("Fixed", files=[clip])))).body == ""
    await h.settle()
    assert [call.text for call in backend.calls] == ["Fixed"]


async def test_a_replayed_slash_command_opens_one_form(slack):
    h = await slack(FakeBackend())
    first, replay = replayable(h.slash_fields("/clone"))
    await h.dispatch(first)
    await h.fake.wait_for("views.open")
    assert (await h.dispatch(replay)).status == 200
    await h.settle()
    assert len(h.fake.of("views.open")) == 1


async def test_a_replayed_shortcut_opens_one_form(slack):
    h = await slack(FakeBackend())
    clip = h.fake.host_file("voice.wav", sine_clip())
    shortcut = {"type": "message_action", "callback_id": "clone_this_voice", "trigger_id": h.next_trigger_id(),
                "team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"}, "channel": {"id": "C1"},
                "message": {"type": "message", "user": "U5", "ts": "1.1", "files": [clip]},
                "response_url": f"{h.fake.base}/response_url/shortcut"}
    first, replay = replayable({"payload": json.dumps(shortcut)})
    await h.dispatch(first)
    await h.fake.wait_for("views.open")
    assert (await h.dispatch(replay)).status == 200
    await h.settle()
    assert len(h.fake.of("views.open")) == 1
