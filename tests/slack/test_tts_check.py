"""`/tts-check` through slack-bolt: a form takes the clip (a slash command cannot carry a file), the backend
scores it, and the verdict replaces the form (or, past Slack's 3 s, arrives privately)."""

from __future__ import annotations

import json

from backend.schema import WatermarkCheck
from tests.clips import sine_clip
from tests.fakes import FakeBackend
from tests.slack.conftest import form_values


def check_values(files: list) -> dict:
    return {"reference": form_values(files=files)["reference"]}


async def test_the_verdict_replaces_the_form(slack):
    backend = FakeBackend(verdict=WatermarkCheck(watermarked=True, confidence=0.97))
    h = await slack(backend)
    view = await h.open_view("/tts-check")
    (picker,) = [b for b in view["blocks"] if b.get("block_id") == "reference"]
    assert picker["element"]["type"] == "file_input" and picker["element"]["max_files"] == 1
    data = sine_clip(seconds=2.0)
    clip = h.fake.host_file("suspicious.wav", data)
    body = json.loads((await h.dispatch(h.submission(view, check_values([clip])))).body)
    assert body["response_action"] == "update" and "submit" not in body["view"]
    verdict = body["view"]["blocks"][0]["text"]["text"]
    assert verdict.startswith(":white_check_mark: *suspicious.wav*: This clip carries voicebot's watermark")
    assert backend.checked == [data] and not backend.calls  # scored, nothing generated


async def test_no_watermark_says_what_that_cannot_prove(slack):
    h = await slack(FakeBackend(verdict=WatermarkCheck(watermarked=False, confidence=0.03)))
    view = await h.open_view("/tts-check")
    clip = h.fake.host_file("recording.m4a", sine_clip(seconds=2.0), "audio/mp4")
    body = json.loads((await h.dispatch(h.submission(view, check_values([clip])))).body)
    verdict = body["view"]["blocks"][0]["text"]["text"]
    assert verdict.startswith(":grey_question: *recording.m4a*: No voicebot watermark found")
    assert "changed too much to tell" in verdict


async def test_a_clip_that_cannot_be_checked_stays_on_the_form(slack):
    backend = FakeBackend(verdict=WatermarkCheck(watermarked=True, confidence=1.0))
    h = await slack(backend)
    view = await h.open_view("/tts-check")
    body = json.loads((await h.dispatch(h.submission(view, check_values([])))).body)
    assert body["errors"] == {"reference": "Attach the clip to check."}
    short = h.fake.host_file("blip.wav", sine_clip(seconds=0.4))
    body = json.loads((await h.dispatch(h.submission(view, check_values([short])))).body)
    assert list(body["errors"]) == ["reference"] and "blip.wav" in body["errors"]["reference"]
    assert not backend.checked


async def test_a_slow_check_closes_the_form_and_answers_privately(slack):
    h = await slack(FakeBackend(verdict=WatermarkCheck(watermarked=True, confidence=0.9)), ack_budget_s=0)
    view = await h.open_view("/tts-check")
    clip = h.fake.host_file("voice.wav", sine_clip(seconds=2.0))
    assert (await h.dispatch(h.submission(view, check_values([clip])))).body == ""
    await h.settle()
    (answer,) = h.responses()
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith(":white_check_mark: *voice.wav*: This clip carries voicebot's watermark")
