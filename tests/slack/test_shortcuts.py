"""Message shortcut "Clone this voice": the message's audio file is the clip; a choice offers speaking a text
with it once (the clone form, the result in that message's thread) or saving it as a voice (the save form)."""

from __future__ import annotations

import json

from bot.slack.voice_forms import CHOOSE_CLONE, CHOOSE_SAVE
from tests.clips import sine_clip
from tests.fakes import FakeBackend
from tests.slack.conftest import form_values, interactive_request


async def test_shortcut_offers_a_one_off_clone_or_saving_the_voice(slack):
    h = await slack(FakeBackend())
    memo = h.fake.host_file("memo.m4a", sine_clip(seconds=2.0), "audio/mp4", file_id="F0MEMO")
    message = {"type": "message", "user": "U5", "ts": "1700000000.000100", "files": [memo]}
    choice = await h.shortcut(message)
    assert choice["callback_id"] == "voice_choice_modal" and "submit" not in choice
    buttons = [e["action_id"] for b in choice["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [CHOOSE_CLONE, CHOOSE_SAVE]
    assert "*memo.m4a*" in choice["blocks"][0]["text"]["text"]
    save = await h.choose(choice, CHOOSE_SAVE)
    assert save["callback_id"] == "voice_save_modal" and save["id"] == choice["id"]
    assert all(block.get("block_id") != "reference" for block in save["blocks"])  # the message's clip is used
    assert json.loads(save["private_metadata"])["file"] == {"id": "F0MEMO", "name": "memo.m4a"}


async def test_a_second_click_on_the_choice_is_ignored(slack):
    """Both clicks carry the choice's hash; the second finds the view changed (`hash_conflict`): nothing is
    replaced and nobody is told about an error."""
    h = await slack(FakeBackend())
    clip = h.fake.host_file("voice.wav", sine_clip())
    choice = await h.shortcut({"type": "message", "user": "U5", "ts": "1.5", "files": [clip]})
    await h.choose(choice, CHOOSE_CLONE)
    await h.choose(choice, CHOOSE_SAVE)
    assert [c.status for c in h.fake.of("views.update")] == [200, 200]
    assert [c.reply["ok"] for c in h.fake.of("views.update")] == [True, False]
    assert not h.responses() and not h.fake.of("chat.postEphemeral")


async def test_shortcut_clone_then_result_in_the_messages_thread(slack):
    backend = FakeBackend()
    h = await slack(backend)
    memo = h.fake.host_file("memo.m4a", sine_clip(seconds=2.0), "audio/mp4", file_id="F0MEMO")
    image = {"id": "F0IMG", "name": "cat.png", "mimetype": "image/png", "filetype": "png"}
    message = {"type": "message", "user": "U5", "ts": "1700000000.000100", "text": "my voice",
               "files": [image, memo]}
    view = await h.choose(await h.shortcut(message), CHOOSE_CLONE)
    assert all(block.get("block_id") != "reference" for block in view["blocks"])  # no file picker
    assert "*memo.m4a*" in view["blocks"][0]["elements"][0]["text"]
    metadata = json.loads(view["private_metadata"])
    assert metadata["channel_id"] == "C9" and metadata["thread_ts"] == message["ts"]
    assert metadata["file"]["id"] == "F0MEMO" and len(view["private_metadata"]) < 3000

    response = await h.dispatch(h.submission(view, form_values("From the shortcut", language="English")))
    assert response.body == ""
    await h.settle()
    progress = h.fake.of("chat.postMessage")[0].args
    assert (progress["channel"], progress["thread_ts"]) == ("C9", message["ts"])
    complete = h.fake.of("files.completeUploadExternal")[0].args
    assert (complete["channel_id"], complete["thread_ts"]) == ("C9", message["ts"])
    assert backend.calls[0].text == "From the shortcut" and backend.calls[0].language == "English"
    assert [c.path for c in h.fake.calls if c.path.startswith("/files-pri/")] == [
        "/files-pri/T1-F0MEMO/memo.m4a"]
    assert h.fake.of("chat.update")[-1].args["text"].startswith(":white_check_mark:")


async def test_shortcut_on_a_threaded_reply_answers_in_that_thread(slack):
    h = await slack(FakeBackend())
    clip = h.fake.host_file("voice.wav", sine_clip())
    message = {"type": "message", "user": "U5", "ts": "1700000000.000300", "thread_ts": "1700000000.000100",
               "files": [clip]}
    view = await h.choose(await h.shortcut(message), CHOOSE_CLONE)
    await h.dispatch(h.submission(view, form_values("Reply")))
    await h.settle()
    assert h.fake.of("files.completeUploadExternal")[0].args["thread_ts"] == "1700000000.000100"


async def test_shortcut_on_a_message_without_audio(slack):
    h = await slack(FakeBackend())
    message = {"type": "message", "user": "U5", "ts": "1700000000.000200", "text": "no clip here",
               "files": [{"id": "F1", "name": "notes.pdf", "mimetype": "application/pdf", "filetype": "pdf"}]}
    await h.dispatch(interactive_request({
        "type": "message_action", "callback_id": "clone_this_voice", "trigger_id": "9.9.9",
        "team": {"id": "T1", "domain": "test"}, "user": {"id": "U1", "team_id": "T1"},
        "channel": {"id": "C9", "name": "voices"}, "message": message, "message_ts": message["ts"],
        "response_url": f"{h.fake.base}/response_url/shortcut", "api_app_id": "A1", "token": "legacy"}))
    answer = await h.fake.wait_for(lambda c: c.path.startswith("/response_url/"))
    assert answer.args["response_type"] == "ephemeral" and "has no audio file" in answer.args["text"]
    assert not h.fake.of("views.open")


async def test_shortcut_clip_problems_are_shown_on_the_form(slack):
    h = await slack(FakeBackend())
    silent = h.fake.host_file("silence.wav", sine_clip(amplitude=0.0))
    message = {"type": "message", "user": "U5", "ts": "1700000000.000400", "files": [silent]}
    view = await h.choose(await h.shortcut(message), CHOOSE_CLONE)
    body = json.loads((await h.dispatch(h.submission(view, form_values("Hi")))).body)
    assert list(body["errors"]) == ["text"]  # the form's only field; the message names the clip
    assert "silence.wav" in body["errors"]["text"] and "silent" in body["errors"]["text"]
