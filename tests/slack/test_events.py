"""`@voicebot <text>` with a clip attached: the result goes into the message's thread."""

from __future__ import annotations

from bot.slack.listeners.events.app_mention import spoken_text
from tests.clips import sine_clip
from tests.fakes import FakeBackend
from tests.slack.conftest import event_request
from tests.slack.fake_slack import BOT_USER_ID


def mention(text: str, files: list | None = None, ts: str = "1700000001.000200", **extra) -> dict:
    event = {"type": "app_mention", "user": "U1", "text": text, "ts": ts, "channel": "C1", "event_ts": ts,
             "team": "T1", **extra}
    if files is not None:
        event["files"] = files
    return event


async def test_mention_with_a_clip_answers_in_the_thread(slack):
    backend = FakeBackend()
    h = await slack(backend)
    clip = h.fake.host_file("hello.ogg", sine_clip(), "audio/ogg")
    event = mention(f"<@{BOT_USER_ID}> Good morning &amp; welcome, <https://example.com|our site>!", [clip])
    response = await h.dispatch(event_request(event))
    assert response.status == 200  # events are acknowledged before the listener runs
    await h.settle()
    assert backend.calls[0].text == "Good morning & welcome, our site!"
    assert backend.calls[0].language == "Auto"
    progress = h.fake.of("chat.postMessage")[0].args
    assert progress["thread_ts"] == event["ts"]
    complete = h.fake.of("files.completeUploadExternal")[0].args
    assert (complete["channel_id"], complete["thread_ts"]) == ("C1", event["ts"])
    assert h.fake.of("chat.update")[-1].args["text"].startswith(":white_check_mark:")


async def test_redelivered_mention_runs_once(slack):
    backend = FakeBackend()
    h = await slack(backend)
    clip = h.fake.host_file("hello.wav", sine_clip())
    event = mention(f"<@{BOT_USER_ID}> Once", [clip])
    await h.dispatch(event_request(event, event_id="Ev7"))
    await h.dispatch(event_request(event, event_id="Ev7"))  # Slack retries when it thinks the ack was lost
    await h.settle()
    assert len(backend.calls) == 1


async def test_mention_without_clip_or_text_explains_privately(slack):
    backend = FakeBackend()
    h = await slack(backend)
    clip = h.fake.host_file("hello.wav", sine_clip())
    await h.dispatch(event_request(mention(f"<@{BOT_USER_ID}> say this", ts="1.1"), event_id="Ev1"))
    await h.dispatch(event_request(mention(f"<@{BOT_USER_ID}>", [clip], ts="1.2"), event_id="Ev2"))
    await h.settle()
    answers = h.fake.of("chat.postEphemeral")
    assert [a.args["thread_ts"] for a in answers] == ["1.1", "1.2"]
    assert all(a.args["user"] == "U1" and "Attach a voice clip" in a.args["text"] for a in answers)
    assert not backend.calls


async def test_mention_with_a_bad_clip_explains_privately(slack):
    backend = FakeBackend()
    h = await slack(backend)
    page = h.fake.host_file("clip.mp3", b"<!DOCTYPE html><html>oops</html>", "audio/mpeg")
    await h.dispatch(event_request(mention(f"<@{BOT_USER_ID}> Hi", [page])))
    await h.settle()
    (answer,) = h.fake.of("chat.postEphemeral")
    assert "looks like a web page (HTML), not audio" in answer.args["text"]
    assert not backend.calls and not h.fake.of("chat.postMessage")


async def test_mention_with_a_file_stub_looks_the_file_up(slack):
    """Events may carry `file_access: check_file_info` stubs without URLs: `files.info` fills them in."""
    h = await slack(FakeBackend())
    h.fake.host_file("hello.wav", sine_clip(), file_id="F0STUB")
    stub = {"id": "F0STUB", "file_access": "check_file_info", "created": 1700000000, "user": "U1"}
    await h.dispatch(event_request(mention(f"<@{BOT_USER_ID}> Hi there", [stub])))
    await h.settle()
    assert h.fake.of("files.info")[0].args["file"] == "F0STUB"
    assert h.fake.of("files.completeUploadExternal")


def test_spoken_text():
    assert spoken_text("<@UBOT> Hi <@U2|bob>, see <#C1|general> &lt;3") == "Hi , see general <3"
