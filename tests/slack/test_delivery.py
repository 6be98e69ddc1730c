"""Nothing lost on Slack's side: rate limits and server errors are retried (slack_sdk's handlers, the upload as a
whole), the progress message reaches a final state or the user hears it privately, a refused thread sends the
audio as a direct message, and when nothing takes it the WAV is kept for the admins and the user told the job id.
"""

from __future__ import annotations

import types

import pytest
from slack_sdk.http_retry import builtin_async_handlers

from backend.errors import BackendUnavailable
from tests.clips import sine_clip
from tests.fakes import FakeBackend
from tests.slack.conftest import event_request
from tests.slack.fake_slack import BOT_USER_ID, Fault

RAW_SDK_TEXT = ("status:", "Failed to upload", "SlackApiError", "SlackRequestError", "ratelimited", "body:",
                "internal_error")


@pytest.fixture
def no_jitter(monkeypatch):
    """slack_sdk waits Retry-After plus up to 1 s of jitter; with the fake's `Retry-After: 0` a retry is immediate."""
    monkeypatch.setattr(builtin_async_handlers, "random", types.SimpleNamespace(random=lambda: 0.0))


async def mention_job(h, user: str = "U1", ts: str = "1700000001.000100") -> None:
    """`@voicebot` with a clip, in channel C1; waits until the flow has ended."""
    clip = h.fake.host_file("voice.wav", sine_clip())
    event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER_ID}> Hello there", "ts": ts,
             "channel": "C1", "event_ts": ts, "files": [clip]}
    assert (await h.dispatch(event_request(event, event_id=f"Ev{ts}"))).status == 200
    await h.settle()


def delivered_to(h) -> list[str]:
    """The channels the audio reached (completed uploads)."""
    return [c.args["channel_id"] for c in h.fake.accepted("files.completeUploadExternal")]


def job_of(h) -> str:
    """The job id, as the result's comment names it ("... voice clone (job J7K2QX)")."""
    comment = h.fake.accepted("files.completeUploadExternal")[0].args["initial_comment"]
    return comment.split("(job ", 1)[1].split(")", 1)[0]


def private_texts(h) -> list[str]:
    return [c.args["text"] for c in h.fake.accepted("chat.postEphemeral")]


def assert_no_sdk_text(texts: list[str]) -> None:
    for text in texts:
        assert not any(raw in text for raw in RAW_SDK_TEXT), text


async def test_a_429_on_the_progress_message_is_waited_out(slack):
    """Slack's Retry-After is honoured (slack_sdk's rate-limit handler) instead of failing the job."""
    h = await slack(FakeBackend())
    h.fake.faults.append(Fault("chat.postMessage", status=429, retry_after=1, times=1))
    await mention_job(h)
    assert [c.refused_by for c in h.fake.of("chat.postMessage")] == ["fault", None]
    assert delivered_to(h) == ["C1"]
    assert h.fake.accepted("chat.update")[-1].args["text"].startswith(":white_check_mark:")
    assert h.services.clone.queue.stats().done == 1 and not private_texts(h)


async def test_a_500_on_the_upload_post_is_retried(slack):
    h = await slack(FakeBackend())
    h.fake.faults.append(Fault("/upload/", status=500, times=1))
    await mention_job(h)
    uploads = [c for c in h.fake.calls if c.path.startswith("/upload/")]
    assert [c.status for c in uploads] == [500, 200] and uploads[0].path == uploads[1].path
    assert delivered_to(h) == ["C1"] and h.services.clone.queue.stats().done == 1


async def test_a_429_on_complete_upload_is_waited_out(slack, no_jitter):
    h = await slack(FakeBackend())
    h.fake.faults.append(Fault("files.completeUploadExternal", status=429, times=1))
    await mention_job(h)
    assert [c.status for c in h.fake.of("files.completeUploadExternal")] == [429, 200]
    assert delivered_to(h) == ["C1"] and h.services.clone.queue.stats().done == 1


@pytest.mark.parametrize(("target", "status", "times"), [
    ("/upload/", 502, 1),  # slack_sdk's server-error handler retries 500/503 only
    ("/upload/", 500, 3),  # more 500s than the handler retries
    ("files.completeUploadExternal", 429, 5),  # more 429s than the handler retries
], ids=["502-on-upload", "500s-on-upload", "429s-on-complete"])
async def test_a_persistent_upload_failure_retries_the_whole_upload(slack, no_jitter, target, status, times):
    h = await slack(FakeBackend())
    fault = Fault(target, status=status, times=times)
    h.fake.faults.append(fault)
    await mention_job(h)
    assert fault.fired == fault.times
    assert len(h.fake.accepted("files.getUploadURLExternal")) == 2  # a fresh upload URL for the second try
    assert delivered_to(h) == ["C1"] and h.services.clone.queue.stats().done == 1
    assert h.fake.accepted("chat.update")[-1].args["text"].startswith(":white_check_mark:")


async def test_edits_refused_for_good_still_tell_the_user_the_outcome(slack, no_jitter):
    """chat.update answers 429 to every attempt: the audio is delivered and the user hears privately that the job
    is done, instead of a message stuck at "cloning the voice…"."""
    h = await slack(FakeBackend())
    h.fake.faults.append(Fault("chat.update", status=429))
    await mention_job(h)
    assert delivered_to(h) == ["C1"] and h.services.clone.queue.stats().done == 1
    assert not h.fake.accepted("chat.update")
    (told,) = private_texts(h)
    assert told == f":white_check_mark: Job {job_of(h)} is done: the audio is in the thread."


async def test_a_refused_thread_sends_the_audio_as_a_direct_message(slack):
    h = await slack(FakeBackend())
    h.fake.faults.append(Fault("files.completeUploadExternal", status=200, error="not_in_channel",
                               when=lambda call: call.args.get("channel_id") == "C1"))
    await mention_job(h)
    assert h.fake.accepted("conversations.open")[0].args["users"] == "U1"
    assert delivered_to(h) == ["DU1"]
    comment = h.fake.accepted("files.completeUploadExternal")[0].args["initial_comment"]
    assert comment.startswith("<@U1> here is your voice clone (job ") and "could not post it in <#C1>" in comment
    final = h.fake.accepted("chat.update")[-1].args["text"]
    assert final.startswith(":white_check_mark:") and "sent as a direct message" in final
    assert h.services.clone.queue.stats().done == 1 and not h.services.undelivered.entries()


async def test_when_no_route_takes_it_the_audio_is_kept_and_the_user_told(slack):
    h = await slack(FakeBackend())
    h.fake.faults.append(Fault("files.completeUploadExternal", status=200, error="not_in_channel"))
    h.fake.scopes.discard("im:write")  # no direct messages either
    await mention_job(h)
    assert not delivered_to(h)
    (kept,) = h.services.undelivered.entries()
    assert kept.user_id == "slack:U1" and kept.place == "slack:T1/C1"
    assert kept.wav.read_bytes()[:4] == b"RIFF"
    assert "not_in_channel" in kept.reason and "im:write" in kept.reason
    (told,) = private_texts(h)
    assert f"job {kept.job_id}" in told and "kept for you" in told and "ask an admin" in told
    assert_no_sdk_text([told])
    final = h.fake.accepted("chat.update")[-1].args["text"]
    assert final == f":x: <@U1> Job {kept.job_id} failed."  # public: the outcome, not the reason

    report = await h.health("UADMIN")
    assert report["blocks"][0]["text"]["text"].endswith("(undelivered)")
    assert "*Undelivered results:* 1 kept in " in report["text"] and kept.job_id in report["text"]
    assert "lacks the im:write scope" in report["text"]  # what to fix, for admins only


async def test_slack_unreachable_for_good_is_told_without_library_text(slack, no_jitter):
    """Every upload POST fails: after the retries the user reads a plain message, never slack_sdk's text."""
    h = await slack(FakeBackend())
    h.fake.faults.append(Fault("/upload/", status=502))
    await mention_job(h)
    (kept,) = h.services.undelivered.entries()
    assert "SlackRequestError" in kept.reason  # the operator gets the library's words
    (told,) = private_texts(h)
    assert f"job {kept.job_id}" in told
    assert_no_sdk_text(private_texts(h) + [c.args["text"] for c in h.fake.accepted("chat.update")])


async def test_a_failure_reaches_the_user_by_direct_message_when_no_ephemeral_is_possible(slack):
    h = await slack(FakeBackend(error=BackendUnavailable("The voice backend is not reachable.")))
    h.fake.fail["chat.postEphemeral"] = "channel_not_found"
    await mention_job(h)
    (dm,) = [c for c in h.fake.accepted("chat.postMessage") if c.args["channel"] == "DU1"]
    assert dm.args["text"].startswith(":x: Job ") and dm.args["text"].endswith("The voice backend is not reachable.")
    job_id = dm.args["text"].split()[2]
    assert h.fake.accepted("chat.update")[-1].args["text"] == f":x: <@U1> Job {job_id} failed."
