"""`/voice save` through slack-bolt: the form shows the consent statement with a required checkbox; nothing is
stored without the tick, a bad name or a taken one costs no download, a bad clip stays on the form, and a saved
voice keeps the statement, who ticked it and when."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3

from bot.slack.voice_forms import CHOOSE_SAVE, statement_digest
from commands.settings import CommandSettings
from commands.storage.voices import Member
from commands.voice_library import CONSENT_STATEMENT
from tests.clips import sine_clip
from tests.fakes import FakeBackend
from tests.slack.conftest import save_values


def downloads(h) -> list:
    return [c for c in h.fake.calls if c.path.startswith("/files-pri/")]


async def stored(h, user: str = "U1") -> list:
    return await h.services.library.storage.voices.owned_by("slack", user)


async def test_save_form_shows_the_consent_statement_and_requires_the_tick(slack):
    h = await slack(FakeBackend())
    view = await h.open_view("/voice", "save Grandpa Joe")
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert view["callback_id"] == "voice_save_modal"
    assert blocks["name"]["element"]["initial_value"] == "Grandpa Joe"
    assert blocks["reference"]["element"]["type"] == "file_input"
    assert [o["value"] for o in blocks["scope"]["element"]["options"]] == ["me", "server"]
    assert blocks["scope"]["element"]["initial_option"]["value"] == "me"
    statement = next(b for b in view["blocks"] if b["type"] == "section" and "Consent" in b["text"]["text"])
    assert CONSENT_STATEMENT in statement["text"]["text"].replace("\n>", " ")
    consent = blocks["consent"]
    assert consent["element"]["type"] == "checkboxes" and not consent.get("optional")
    assert json.loads(view["private_metadata"])["statement"] == statement_digest(CONSENT_STATEMENT)

    clip = h.fake.host_file("joe.wav", sine_clip(seconds=3.0))
    body = json.loads((await h.dispatch(h.submission(view, save_values("Grandpa Joe", files=[clip],
                                                                         consent=False)))).body)
    assert body == {"response_action": "errors", "errors": {
        "consent": "Tick the box to confirm the statement: a voice is saved only with that consent."}}
    await h.settle()
    assert not downloads(h) and not await stored(h)


async def test_a_saved_voice_keeps_the_consent_it_was_given_with(slack):
    h = await slack(FakeBackend())
    clip = h.fake.host_file("joe.wav", sine_clip(seconds=3.0))
    response = await h.save_voice("Grandpa Joe", clip=clip)
    assert response.body == ""  # the form closed
    (answer,) = h.responses()
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith(":white_check_mark: Saved the voice *Grandpa Joe*. Only you can use it")
    (voice,) = await stored(h)
    assert (voice.name, voice.scope, voice.owner) == ("Grandpa Joe", "me", Member("slack", "T1", "U1"))
    assert voice.consent.statement == CONSENT_STATEMENT and voice.consent.confirmed_by == "slack:U1"
    wav = await h.services.library.storage.clips.get(voice.clip_sha256)
    assert wav[:4] == b"RIFF" and hashlib.sha256(wav).hexdigest() == voice.clip_sha256
    assert downloads(h)[0].auth == "Bearer xoxb-test-token"

    info = await h.command("/voice", "info grandpa  JOE")  # names match case- and space-insensitively
    assert "Voice “Grandpa Joe”" in info["text"] and "only its owner" in info["text"]
    assert "confirmed by <@U1>" in info["text"] and "<!date^" in info["text"]
    assert CONSENT_STATEMENT in info["text"].replace("\n>", " ")


async def test_names_with_markup_are_refused_before_any_download(slack):
    h = await slack(FakeBackend())
    clip = h.fake.host_file("x.wav", sine_clip(seconds=3.0))
    for name in ("<@U2> fan", "*bold*", "<!channel>", "x" * 40, "joe\u200bjoe", ":smile:"):
        view = await h.open_view("/voice", "save")
        body = json.loads((await h.dispatch(h.submission(view, save_values(name, files=[clip])))).body)
        assert list(body["errors"]) == ["name"], name
        assert "Voice names" in body["errors"]["name"] or "voice name" in body["errors"]["name"]
    await h.settle()
    assert not downloads(h) and not await stored(h)


async def test_a_taken_name_is_refused_on_the_form_before_the_download(slack):
    h = await slack(FakeBackend())
    await h.save_voice("Narrator")
    before = len(downloads(h))
    view = await h.open_view("/voice", "save")
    clip = h.fake.host_file("other.wav", sine_clip(seconds=3.0), file_id="F0OTHER")
    body = json.loads((await h.dispatch(h.submission(view, save_values("NARRATOR", files=[clip])))).body)
    assert body["errors"]["name"].startswith("You already have a voice called “Narrator”.")
    await h.settle()
    assert len(downloads(h)) == before and len(await stored(h)) == 1


async def test_a_bad_clip_stays_on_the_form_and_nothing_is_stored(slack):
    h = await slack(FakeBackend())
    view = await h.open_view("/voice", "save")
    short = h.fake.host_file("short.wav", sine_clip(seconds=0.4))
    body = json.loads((await h.dispatch(h.submission(view, save_values("Shorty", files=[short])))).body)
    assert body["errors"] == {
        "reference": "The reference clip “short.wav” is 0.40 s long; it must be at least 1 s."}
    await h.settle()
    assert not await stored(h) and not list((h.services.settings.data_dir / "clips").rglob("*.wav"))


async def test_a_slow_save_closes_the_form_and_reports_privately(slack):
    h = await slack(FakeBackend(), ack_budget_s=0)
    view = await h.open_view("/voice", "save")
    clip = h.fake.host_file("joe.wav", sine_clip(seconds=3.0))
    response = await h.dispatch(h.submission(view, save_values("Joe", files=[clip], scope="server")))
    assert response.body == ""
    await h.settle()
    assert "Saved the voice *Joe*. Everyone in this workspace can use it" in h.responses()[-1]["text"]
    # the same form submitted again (a replay) is acknowledged and ignored
    assert (await h.dispatch(h.submission(view, save_values("Joe", files=[clip])))).body == ""
    await h.settle()
    assert len(await stored(h)) == 1


async def test_a_form_showing_an_older_statement_is_refused(slack):
    h = await slack(FakeBackend())
    view = await h.open_view("/voice", "save")
    metadata = json.loads(view["private_metadata"])
    old = {**view, "private_metadata": json.dumps({**metadata, "statement": statement_digest("an older wording")})}
    clip = h.fake.host_file("joe.wav", sine_clip(seconds=3.0))
    body = json.loads((await h.dispatch(h.submission(old, save_values("Joe", files=[clip])))).body)
    assert "consent statement changed" in body["errors"]["consent"]
    assert not await stored(h)


async def test_too_many_voices_is_refused_on_the_name(slack):
    h = await slack(FakeBackend(), CommandSettings(cooldown_s=0, max_voices_per_user=1, _env_file=None))
    await h.save_voice("One")
    view = await h.open_view("/voice", "save")
    clip = h.fake.host_file("two.wav", sine_clip(seconds=3.0), file_id="F0TWO")
    body = json.loads((await h.dispatch(h.submission(view, save_values("Two", files=[clip])))).body)
    assert "You already have 1 saved voices here" in body["errors"]["name"]


async def test_the_shortcut_saves_the_messages_clip_as_a_voice(slack):
    h = await slack(FakeBackend())
    memo = h.fake.host_file("memo.m4a", sine_clip(seconds=2.0), "audio/mp4", file_id="F0MEMO")
    choice = await h.shortcut({"type": "message", "user": "U5", "ts": "1.7", "files": [memo]})
    form = await h.choose(choice, CHOOSE_SAVE)
    assert "reference" not in {b.get("block_id") for b in form["blocks"]}
    response = await h.dispatch(h.submission(form, save_values("Memo Voice", files=None)))
    assert response.body == ""
    await h.settle()
    (voice,) = await stored(h)
    assert voice.name == "Memo Voice"
    assert [c.path for c in downloads(h)] == ["/files-pri/T1-F0MEMO/memo.m4a"]
    assert "Saved the voice *Memo Voice*" in h.responses()[-1]["text"]


async def test_a_locked_database_keeps_the_form_open_and_loses_nothing(slack):
    h = await slack(FakeBackend(), CommandSettings(cooldown_s=0, database_timeout_s=0.5, _env_file=None))
    await h.save_voice("Ann")
    view = await h.open_view("/voice", "save")
    clip = h.fake.host_file("joe.wav", sine_clip(seconds=3.0))
    # Another process holds the write lock (taken off the event loop: the bot's own statements must finish).
    lock = sqlite3.connect(h.services.settings.data_dir / "voicebot.db", isolation_level=None,
                           check_same_thread=False)
    await asyncio.to_thread(lock.execute, "BEGIN EXCLUSIVE")
    try:
        body = json.loads((await h.dispatch(h.submission(view, save_values("Joe", files=[clip])))).body)
        listed = await h.command("/voice", "list")
        assert await h.options("") == []  # a picker has nowhere to show an error: no options
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert "nothing was changed" in body["errors"]["name"]
    assert listed["text"].startswith(":x: ") and "nothing was changed" in listed["text"]
    assert "voicebot.db" not in body["errors"]["name"] + listed["text"]  # where the database is: admins only
    assert (await h.dispatch(h.submission(view, save_values("Joe", files=[clip])))).body == ""  # submit again
    await h.settle()
    assert sorted(voice.name for voice in await stored(h)) == ["Ann", "Joe"]
    assert [option["value"] for option in await h.options("")] == ["Ann", "Joe"]
