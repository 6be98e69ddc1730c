"""The clone form's submission through slack-bolt: inline errors keep the form open and never reach the backend;
a valid form closes, the clip is downloaded with the bot token, a progress message follows the job, and the WAV
is uploaded into its thread with the three-step upload."""

from __future__ import annotations

import io
import json

import soundfile as sf

from backend.errors import BackendUnavailable
from commands.settings import CommandSettings
from commands.timing import CONSENT_LINE, result_filename
from tests.clips import sine_clip
from tests.fakes import FakeBackend
from tests.slack.conftest import form_values
from tests.slack.fake_slack import BOT_TOKEN


def downloads(h) -> list:
    return [c for c in h.fake.calls if c.path.startswith("/files-pri/")]


async def test_invalid_fields_are_shown_on_the_form(slack):
    backend = FakeBackend()
    h = await slack(backend)
    view = await h.open_form()
    values = form_values("   ", files=[], language="Klingon", ref_text="x" * 1001)
    response = await h.dispatch(h.submission(view, values))
    assert response.status == 200
    body = json.loads(response.body)
    assert body["response_action"] == "errors"  # the form stays open with the fields marked
    assert body["errors"] == {
        "reference": "Attach a reference clip: a recording of the voice to clone.",
        "text": "The text is empty: type what the voice should say.",
        "language": body["errors"]["language"],
        "ref_text": "The transcript is 1001 characters; the limit is 1000.",
    }
    assert body["errors"]["language"].startswith("Unknown language 'Klingon'. Choose one of: Auto, English,")
    await h.settle()
    assert not downloads(h) and not backend.calls
    assert h.fake.methods() == ["auth.test", "views.open"]


async def test_a_bad_clip_is_shown_on_the_file_field(slack):
    backend = FakeBackend()
    h = await slack(backend)
    view = await h.open_form()
    short = h.fake.host_file("hello.wav", sine_clip(seconds=0.4))
    response = await h.dispatch(h.submission(view, form_values(files=[short])))
    body = json.loads(response.body)
    assert body == {"response_action": "errors", "errors": {
        "reference": "The reference clip “hello.wav” is 0.40 s long; it must be at least 1 s."}}
    assert downloads(h)[0].auth == f"Bearer {BOT_TOKEN}"
    await h.settle()
    assert not backend.calls and not h.fake.of("chat.postMessage")


async def test_an_html_answer_names_the_token_and_files_read_to_admins(slack):
    h = await slack(FakeBackend(), bot_token="xoxb-revoked")
    view = await h.open_form()
    clip = h.fake.host_file("voice.m4a", sine_clip())
    body = json.loads((await h.dispatch(h.submission(view, form_values(files=[clip])))).body)
    message = body["errors"]["reference"]
    assert message == "Slack would not hand the file over to Voicebot. An admin can see the cause with /tts-health."
    await h.settle()
    assert not h.services.clone.queue.stats().done
    await h.dispatch(h.slash("/tts-health", user="UADMIN"))
    report = (await h.fake.wait_for(lambda c: c.path.startswith("/response_url/"))).args["text"]
    assert "sign-in page" in report and "files:read" in report and "xoxb- token" in report


async def test_cooldown_is_shown_on_the_form(slack):
    h = await slack(FakeBackend(), CommandSettings(cooldown_s=60, _env_file=None))
    clip = h.fake.host_file("voice.wav", sine_clip())
    view = await h.open_form()
    assert (await h.dispatch(h.submission(view, form_values(files=[clip])))).body == ""
    view = await h.open_form()
    again = json.loads((await h.dispatch(h.submission(view, form_values(files=[clip])))).body)
    assert again["errors"]["reference"].startswith("Slow down: you can start another voice clone in ")
    await h.settle()


async def test_valid_form_downloads_with_the_token_and_uploads_the_wav_into_the_thread(slack):
    backend = FakeBackend()
    h = await slack(backend)
    view = await h.open_form()
    clip = h.fake.host_file("my voice.wav", sine_clip(seconds=3.0))
    text = "Hello from Slack, <!channel> & friends"
    values = form_values(text, files=[clip], language="Japanese", ref_text="This is my voice.")
    response = await h.dispatch(h.submission(view, values))
    assert (response.status, response.body) == (200, "")  # the form closes
    await h.settle()

    (download,) = downloads(h)
    assert download.auth == f"Bearer {BOT_TOKEN}" and download.args == {"download": "1"}
    (request,) = backend.calls
    assert (request.text, request.ref_text, request.language) == (text, "This is my voice.", "Japanese")
    assert request.reference[:4] == b"RIFF"  # normalised to WAV by backend.intake

    flow = [c.method or c.path.split("/")[1] for c in h.fake.calls[2:]]
    assert flow[:3] == ["files.info", "files-pri", "chat.postMessage"]
    assert flow.index("files.getUploadURLExternal") < flow.index("upload") < flow.index(
        "files.completeUploadExternal") < len(flow) - 1
    assert flow[-1] == "chat.update"

    progress = h.fake.of("chat.postMessage")[0]
    assert progress.args["channel"] == "C1" and "thread_ts" not in progress.args
    assert progress.args["text"].startswith(":") and "<@U1> Job " in progress.args["text"]
    final = h.fake.of("chat.update")[-1].args
    assert final["ts"] == progress.reply["ts"]
    assert final["text"].startswith(":white_check_mark: <@U1> Job ") and " done in " in final["text"]

    url_request = h.fake.of("files.getUploadURLExternal")[0].args
    upload = next(c for c in h.fake.calls if c.path.startswith("/upload/"))
    assert url_request["filename"] == result_filename(text) == "hello-from-slack-channel-friends.wav"
    assert int(url_request["length"]) == len(upload.raw)
    info = sf.info(io.BytesIO(upload.raw))
    assert (info.format, info.samplerate, info.channels) == ("WAV", 24_000, 1) and info.frames > 0

    complete = h.fake.of("files.completeUploadExternal")[0].args
    assert complete["channel_id"] == "C1"
    assert complete["thread_ts"] == progress.reply["ts"]  # the WAV goes into the progress message's thread
    file_id = h.fake.of("files.getUploadURLExternal")[0].reply["file_id"]
    assert complete["files"] == [{"id": file_id, "title": "Voice clone: Hello from Slack, <!channel> & friends"}]
    comment = complete["initial_comment"]
    assert comment.startswith("<@U1> here is your voice clone (job ")
    for label in ("Text", "Language", "Audio length", "Queue wait", "Voice clone", "Generation", "Total",
                  "Real-time factor", "Backend"):
        assert f"*{label}:*" in comment
    assert "*Text:* Hello from Slack, &lt;!channel&gt; &amp; friends" in comment  # nobody gets pinged
    assert "*Backend:* fake on Fake GPU" in comment and "*Language:* Japanese" in comment
    assert comment.endswith(f"_{CONSENT_LINE}_")
    assert not h.responses()  # nothing went wrong, so nothing private was sent
    assert h.services.clone.queue.stats().done == 1


async def test_progress_follows_the_queue(slack):
    """queued #1 -> cloning/generating -> uploading -> done, edited in place, for a job that had to wait."""
    backend = FakeBackend(hold=True)
    h = await slack(backend, CommandSettings(cooldown_s=0, max_concurrent_jobs=1, _env_file=None))
    clip = h.fake.host_file("voice.wav", sine_clip())
    view = await h.open_form("U1")
    await h.dispatch(h.submission(view, form_values("first", files=[clip]), user="U1"))
    first = await backend.next_call()
    view = await h.open_form("U2")
    await h.dispatch(h.submission(view, form_values("second", files=[clip]), user="U2"))

    def texts_for(user: str) -> list[str]:
        posted = [c for c in h.fake.of("chat.postMessage") if f"<@{user}>" in c.args["text"]]
        updates = [c.args["text"] for c in h.fake.of("chat.update") if f"<@{user}>" in c.args["text"]]
        return [posted[0].args["text"], *updates] if posted else []

    await h.fake.wait_for(lambda _: any("queued, position 1 of 1" in t for t in texts_for("U2")))
    first.release()
    second = await backend.next_call()
    await h.fake.wait_for(lambda _: any("generating speech" in t for t in texts_for("U2")))
    second.release()
    await h.settle()
    seen = texts_for("U2")
    order = ["queued, position 1", "generating speech", "done in"]  # coalescing may skip "uploading"
    positions = [next(i for i, t in enumerate(seen) if phrase in t) for phrase in order]
    assert positions == sorted(positions), seen
    assert seen[0].startswith(":hourglass_flowing_sand:") and seen[-1].startswith(":white_check_mark:")
    assert len({c.args["ts"] for c in h.fake.of("chat.update") if "<@U2>" in c.args["text"]}) == 1


async def test_backend_failure_is_told_privately_with_the_job_id(slack):
    h = await slack(FakeBackend(error=BackendUnavailable("The voice backend is not reachable.")))
    view = await h.open_form()
    clip = h.fake.host_file("voice.wav", sine_clip())
    assert (await h.dispatch(h.submission(view, form_values(files=[clip])))).body == ""
    await h.settle()
    (answer,) = h.responses()
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith(":x: Job ") and answer["text"].endswith(
        " failed: The voice backend is not reachable.")
    job_id = answer["text"].split()[2]
    assert job_id in h.fake.of("chat.postMessage")[0].args["text"]
    final = h.fake.of("chat.update")[-1].args  # the public message ends as failed, the reason stays private
    assert final["ts"] == h.fake.of("chat.postMessage")[0].reply["ts"]
    assert final["text"] == f":x: <@U1> Job {job_id} failed."
    assert not h.fake.of("files.getUploadURLExternal")
    assert h.services.clone.queue.stats().failed == 1


async def test_missing_files_write_scope_is_named(slack):
    h = await slack(FakeBackend())
    h.fake.scopes.discard("files:write")
    view = await h.open_form()
    clip = h.fake.host_file("voice.wav", sine_clip())
    await h.dispatch(h.submission(view, form_values(files=[clip])))
    await h.settle()
    (answer,) = h.responses()  # neither the thread nor a DM took it: kept, and the user told so
    assert "Slack would not take the audio of job " in answer["text"] and "ask an admin" in answer["text"]
    assert "files:write" not in answer["text"]
    assert h.services.clone.queue.stats().failed == 1
    (problem,) = h.services.problems()  # for admins: /tts-health
    assert "lacks the files:write scope" in problem.text and "reinstall" in problem.text
    (kept,) = h.services.undelivered.entries()
    assert "files:write" in kept.reason and kept.wav.read_bytes()[:4] == b"RIFF"


async def test_bot_not_in_channel_is_told_how_to_fix_it(slack):
    h = await slack(FakeBackend())
    h.fake.fail["chat.postMessage"] = "not_in_channel"
    view = await h.open_form()
    clip = h.fake.host_file("voice.wav", sine_clip())
    await h.dispatch(h.submission(view, form_values(files=[clip])))
    await h.settle()
    (answer,) = h.responses()
    assert "not a member of this channel" in answer["text"] and "/invite @voicebot" in answer["text"]
    assert not h.fake.of("files.getUploadURLExternal")


async def test_a_slow_check_closes_the_form_and_reports_privately(slack):
    """Past the acknowledgement budget the form closes; a bad clip is then reported as a private message."""
    backend = FakeBackend()
    h = await slack(backend, ack_budget_s=0)
    view = await h.open_form()
    short = h.fake.host_file("short.wav", sine_clip(seconds=0.4))
    assert (await h.dispatch(h.submission(view, form_values(files=[short])))).body == ""
    await h.settle()
    (answer,) = h.responses()
    assert answer["text"] == ":x: The reference clip “short.wav” is 0.40 s long; it must be at least 1 s."
    assert not backend.calls and not h.fake.of("chat.postMessage")


async def test_too_large_clip_is_refused_before_downloading(slack):
    h = await slack(FakeBackend(), CommandSettings(cooldown_s=0, max_ref_mib=1, _env_file=None))
    view = await h.open_form()
    big = h.fake.host_file("long.wav", sine_clip(seconds=25, sample_rate=48_000))  # 2.3 MiB
    body = json.loads((await h.dispatch(h.submission(view, form_values(files=[big])))).body)
    assert body["errors"] == {"reference": "The reference clip is 2.3 MiB; the limit is 1 MiB."}
    assert not downloads(h)


async def test_download_stops_past_the_limit_when_slack_gives_no_size(slack):
    h = await slack(FakeBackend(), CommandSettings(cooldown_s=0, max_ref_mib=1, _env_file=None))
    view = await h.open_form()
    big = h.fake.host_file("long.wav", sine_clip(seconds=25, sample_rate=48_000))
    del h.fake.file_objects[big["id"]]["size"]
    body = json.loads((await h.dispatch(h.submission(view, form_values(files=[big])))).body)
    assert body["errors"] == {"reference": "The reference clip is 1.0 MiB; the limit is 1 MiB."}
    assert len(downloads(h)) == 1
