"""A restart of the Slack bot: a job it could not finish is journaled, its user told it will continue, and the
next bot (on the same data directory) runs it and delivers the WAV into the thread it was asked in."""

from __future__ import annotations

from bot.slack.clone_flow import resume_jobs
from bot.slack.pacing import Pacer
from bot.slack.web_client import web_client
from tests.clips import sine_clip
from tests.fakes import FakeBackend
from tests.storage.records import left_over
from tests.slack.conftest import UNPACED, event_request, slack_services
from tests.slack.fake_slack import BOT_TOKEN, BOT_USER_ID

TS = "1700000001.000100"


async def test_a_job_suspended_by_a_restart_is_run_and_delivered_in_its_thread_by_the_next_bot(slack):
    held = FakeBackend(hold=True)
    h = await slack(held)
    clip = h.fake.host_file("voice.wav", sine_clip())
    event = {"type": "app_mention", "user": "U1", "text": f"<@{BOT_USER_ID}> Hello after the restart", "ts": TS,
             "channel": "C1", "event_ts": TS, "files": [clip]}
    assert (await h.dispatch(event_request(event, event_id="EvRestart"))).status == 200
    await held.next_call()

    await h.services.clone.queue.drain(timeout=0.01)
    await h.settle()
    told = [c.args["text"] for c in h.fake.accepted("chat.postEphemeral")]
    assert any("will continue when it is back" in text for text in told), told
    assert "paused while the bot restarts" in h.fake.accepted("chat.update")[-1].args["text"]
    assert not h.fake.accepted("files.completeUploadExternal")

    backend = FakeBackend()
    async with slack_services(backend, h.services.settings, h.services.settings.data_dir, bot_token=BOT_TOKEN,
                              file_origins=h.fake.file_origins, pacer=Pacer(UNPACED)) as services:
        assert await resume_jobs(services, web_client(BOT_TOKEN, h.fake.api_url)) == 1
        assert await services.idle(timeout=10)
        await services.clone.journal.flush()
        assert await left_over(services.clone.journal.storage, "slack") == []
    assert [call.text for call in backend.calls] == ["Hello after the restart"]
    [upload] = h.fake.accepted("files.completeUploadExternal")
    assert upload.args["channel_id"] == "C1" and upload.args.get("thread_ts") == TS
    told = [c.args["text"] for c in h.fake.accepted("chat.postEphemeral")]
    assert any("continues" in text for text in told), told
