"""`/say` through slack-bolt: a saved voice speaks by name (own first, then the workspace's), from the form with
its voice picker or as `/say <voice>: <text>`; another member's private voice stays invisible."""

from __future__ import annotations

import json

from tests.fakes import FakeBackend
from tests.slack.conftest import say_values


async def test_say_speaks_with_the_stored_clip_and_delivers_like_a_clone(slack):
    backend = FakeBackend()
    h = await slack(backend)
    await h.save_voice("Narrator")
    (voice,) = await h.services.library.storage.voices.owned_by("slack", "U1")
    stored = await h.services.library.storage.clips.get(voice.clip_sha256)

    await h.dispatch(h.slash("/say", text="narrator: Good morning, <!channel> & all"))
    await h.settle()
    (request,) = backend.calls
    assert request.reference == stored  # byte for byte: the backend's voice cache is keyed by its hash
    assert request.text == "Good morning, <!channel> & all"
    complete = h.fake.of("files.completeUploadExternal")[0].args
    comment = complete["initial_comment"]
    assert comment.startswith("<@U1> here is the voice *Narrator* (job ")
    assert "&lt;!channel&gt; &amp; all" in comment  # nobody is pinged
    assert h.fake.of("chat.update")[-1].args["text"].startswith(":white_check_mark: <@U1> Job ")
    (voice,) = await h.services.library.storage.voices.owned_by("slack", "U1")
    assert voice.uses == 1


async def test_say_form_with_the_voice_picker(slack):
    backend = FakeBackend()
    h = await slack(backend)
    await h.save_voice("Narrator")
    await h.save_voice("Announcer", user="U2", scope="server")
    await h.save_voice("Secret", user="U2")
    view = await h.open_view("/say", "Hello there")
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["voice"]["element"]["type"] == "external_select"
    assert blocks["voice"]["element"]["min_query_length"] == 0
    assert blocks["text"]["element"]["initial_value"] == "Hello there"

    options = await h.options("")
    assert [(o["text"]["text"], o["value"]) for o in options] == [
        ("Narrator (yours)", "Narrator"), ("Announcer (workspace)", "Announcer")]
    assert [o["value"] for o in await h.options("ann")] == ["Announcer"]
    assert [o["text"]["text"] for o in await h.options("", user="U2")] == ["Secret (yours)", "Announcer (yours)"]

    response = await h.dispatch(h.submission(view, say_values("Announcer", "Hello there", "English")))
    assert response.body == ""
    await h.settle()
    (request,) = [call for call in backend.calls]
    assert (request.text, request.language) == ("Hello there", "English")
    assert "the voice *Announcer*" in h.fake.of("files.completeUploadExternal")[0].args["initial_comment"]


async def test_another_members_private_voice_is_not_found(slack):
    backend = FakeBackend()
    h = await slack(backend)
    await h.save_voice("Secret", user="U2")
    await h.dispatch(h.slash("/say", text="Secret: hi", user="U1"))
    await h.settle()
    (answer,) = [r for r in h.responses() if r["text"].startswith(":x:")]
    assert answer["response_type"] == "ephemeral"
    assert "you have no voice called “secret”" in answer["text"].lower()
    assert not backend.calls and not h.fake.of("chat.postMessage")


async def test_say_form_problems_stay_on_the_form(slack):
    backend = FakeBackend()
    h = await slack(backend)
    view = await h.open_view("/say")
    body = json.loads((await h.dispatch(h.submission(view, say_values(None, "  ", "Klingon")))).body)
    assert set(body["errors"]) == {"voice", "text", "language"}
    body = json.loads((await h.dispatch(h.submission(view, say_values("Nobody")))).body)
    assert body["errors"]["voice"].lower().startswith("you have no voice called “nobody”")
    await h.settle()
    assert not backend.calls


async def test_say_without_a_voice_or_a_text_opens_the_form_filled_in(slack):
    h = await slack(FakeBackend())
    view = await h.open_view("/say", "just some text")
    assert view["callback_id"] == "voice_say_modal"
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["text"]["element"]["initial_value"] == "just some text"
    assert "initial_option" not in blocks["voice"]["element"]
    blocks = {b.get("block_id"): b for b in (await h.open_view("/say", "Narrator:  "))["blocks"]}
    assert blocks["voice"]["element"]["initial_option"]["value"] == "Narrator"
    assert "initial_value" not in blocks["text"]["element"]


async def test_what_the_user_typed_is_quoted_as_text_in_errors(slack):
    h = await slack(FakeBackend())
    await h.dispatch(h.slash("/say", text="<!channel> &: hi"))
    await h.settle()
    assert "<!channel>" not in h.responses()[-1]["text"]
    answer = await h.command("/voice", "<!here> please")
    assert answer["text"].startswith("There is no `/voice &lt;!here&gt;`.")
