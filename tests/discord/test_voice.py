"""The voice library on Discord: /voice save with its consent step, /say, list/info/delete/rename, autocomplete,
admins' block/unblock/activity and takedown, forget-me, and "Clone this voice" -> "Save as my voice"."""

from __future__ import annotations

import hashlib

from commands.voice_library import CONSENT_STATEMENT
from tests.clips import sine_clip
from tests.discord.fake_api import (
    ADMIN,
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    AUTOCOMPLETE_RESULT,
    CHANNEL_MESSAGE,
    EPHEMERAL,
    MODAL,
    MODAL_SUBMIT,
    Invoker,
    cdn_download,
    components_of,
    delete_of,
    followup_of,
    message_command,
    message_payload,
    modal_submit,
    option,
    slash,
    snowflake,
    subcommand,
    user_payload,
)
from tests.fakes import FakeBackend

CLIP = sine_clip(3.0)


async def save_voice(bot, name: str, invoker: Invoker, *, scope: str | None = None, clip: bytes = CLIP) -> dict:
    """/voice save, then confirm the consent; returns the confirming click."""
    attachment = bot.attachment(clip)
    extra = {"scope": scope} if scope else {}
    question = bot.voice("save", invoker, attachments=[attachment], name=name, clip=attachment["id"], **extra)
    click = await bot.click(question, "I confirm: save the voice", invoker)
    await bot.answer(click, "Saved")
    return click


async def test_save_asks_for_consent_privately_and_stores_it(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    alice = Invoker()
    attachment = bot.attachment(CLIP)
    question = bot.voice("save", alice, attachments=[attachment], name="  Narrator ", clip=attachment["id"],
                         transcript="la la la")
    deferred = await bot.response(question)
    assert deferred.json["data"]["flags"] == EPHEMERAL  # everything about a save is private
    text = await bot.answer(question, "Before the voice is saved")
    assert CONSENT_STATEMENT in text and "“Narrator” as your own voice" in text and "3.0 s" in text
    assert await bot.library.voices(_member(alice)) == []  # nothing stored before the answer

    click = await bot.click(question, "I confirm: save the voice", alice)
    done = await bot.answer(click, "Saved")
    assert done.startswith("Saved “Narrator” as your own voice") and "/say voice:Narrator" in done
    edit = bot.api.calls_to(lambda c: click["token"] in c.path and c.method == "PATCH")[-1]
    assert components_of(edit) == []  # the buttons are gone: no second save from a second click
    [voice] = await bot.library.voices(_member(alice))
    assert voice.transcript == "la la la" and voice.consent.statement == CONSENT_STATEMENT
    assert voice.consent.confirmed_by == f"discord:{alice.user_id}"


async def test_only_the_saver_can_answer_and_cancel_stores_nothing(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    alice, mallory = Invoker(), Invoker(name="mallory")
    attachment = bot.attachment(CLIP)
    question = bot.voice("save", alice, attachments=[attachment], name="Narrator", clip=attachment["id"])
    intruder = await bot.click(question, "I confirm: save the voice", mallory)
    refused = await bot.response(intruder)
    assert refused.flags == EPHEMERAL and "someone else" in refused.content
    click = await bot.click(question, "Cancel", alice)
    assert (await bot.answer(click, "Cancelled")) == "Cancelled: nothing was saved."
    assert await bot.library.voices(_member(alice)) == []


async def test_a_bad_name_is_refused_before_the_download(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    attachment = bot.attachment(CLIP)
    question = bot.voice("save", Invoker(), attachments=[attachment], name="@everyone", clip=attachment["id"])
    text = await bot.answer(question, "can't contain")
    assert "“@”" in text and "letters, digits, spaces" in text
    assert not bot.api.calls_to(cdn_download(attachment))
    assert not components_of(bot.api.calls_to(lambda c: question["token"] in c.path)[-1])


async def test_a_clip_that_fails_intake_is_refused_before_consent(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    attachment = bot.attachment(sine_clip(0.4))
    question = bot.voice("save", Invoker(), attachments=[attachment], name="Short", clip=attachment["id"])
    text = await bot.answer(question, "at least 1 s")
    assert CONSENT_STATEMENT not in text and len(bot.library.pending) == 0


async def test_say_speaks_with_the_saved_voice_publicly(discord_bot):
    backend = FakeBackend(voice_cached=True)
    bot = await discord_bot(backend, library=True)
    alice = Invoker()
    await save_voice(bot, "Narrator", alice)
    payload = bot.say("narrator", "Good evening", alice, language="English")
    followup = await bot.api.wait_for(followup_of(payload))
    assert followup.flags == 0 and followup.files[0].filename == "good-evening.wav"
    [embed] = followup.embeds
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert embed["title"] == "Saved voice" and fields["Voice clone"].endswith("(cached voice)")
    [voice] = await bot.library.voices(_member(alice))
    [call] = backend.calls
    assert hashlib.sha256(call.reference).hexdigest() == voice.clip_sha256 and call.language == "English"


async def test_say_with_an_unknown_or_private_voice_is_told_privately(discord_bot):
    backend = FakeBackend()
    bot = await discord_bot(backend, library=True)
    alice, bob = Invoker(), Invoker(name="bob")
    await save_voice(bot, "Secret", alice)
    payload = bot.say("Secret", "Hello", bob)
    told = await bot.api.wait_for(followup_of(payload))
    assert told.flags == EPHEMERAL and "no voice called “secret”" in told.content
    await bot.api.wait_for(delete_of(payload))  # the public progress message goes
    assert backend.calls == []


async def test_say_refuses_an_empty_text_at_once(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    response = await bot.response(bot.say("Anything", "   "))
    assert response.json["type"] == CHANNEL_MESSAGE and response.flags == EPHEMERAL
    assert "The text is empty" in response.content


async def test_autocomplete_offers_own_voices_then_the_servers(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    alice, bob = Invoker(), Invoker(name="bob")
    await save_voice(bot, "Narrator", alice)
    await save_voice(bot, "Nate", bob, scope="server", clip=sine_clip(2.0))
    await save_voice(bot, "Nope", bob, clip=sine_clip(2.5))
    data = slash("say", [{**option("voice", "n"), "focused": True}, option("text", "x")])
    response = await bot.response(bot.send(AUTOCOMPLETE, data, alice))
    assert response.json["type"] == AUTOCOMPLETE_RESULT
    assert response.json["data"]["choices"] == [{"name": "Narrator (yours)", "value": "Narrator"},
                                                {"name": "Nate (server)", "value": "Nate"}]


async def test_list_info_rename_delete(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    alice = Invoker()
    await save_voice(bot, "Narrator", alice)
    listed = bot.voice("list", alice)
    text = await bot.answer(listed, "Narrator")
    assert "Voices you can use" in text and "yours" in text
    info = bot.voice("info", alice, name="narrator")
    text = await bot.answer(info, "Consent")
    assert CONSENT_STATEMENT in text and f"<@{alice.user_id}>" in text
    renamed = bot.voice("rename", alice, name="Narrator", new_name="Storyteller")
    assert "now called “Storyteller”" in await bot.answer(renamed, "Renamed")
    deleted = bot.voice("delete", alice, name="Storyteller")
    assert "Deleted the voice “Storyteller”" in await bot.answer(deleted, "Deleted")
    assert await bot.library.voices(_member(alice)) == []


async def test_admin_commands_are_checked_on_the_server(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    alice = Invoker()
    victim = user_payload(alice.user_id, "alice")
    for sub, options in (("block", {"user": victim["id"]}), ("unblock", {"user": victim["id"]}), ("activity", {})):
        response = await bot.response(bot.voice(sub, Invoker(), users=[victim], **options))
        assert response.flags == EPHEMERAL and response.content == "Only the bot's admins can use this command."
    assert not await bot.library.storage.blocks.is_blocked(_member(alice))


async def test_admins_block_and_read_activity(discord_bot):
    backend = FakeBackend()
    bot = await discord_bot(backend, library=True, cooldown_s=0)
    alice, admin = Invoker(), Invoker(name="admin", permissions=ADMIN)
    await save_voice(bot, "Narrator", alice)
    await bot.api.wait_for(followup_of(bot.say("Narrator", "first words", alice)))
    victim = user_payload(alice.user_id, "alice")
    blocked = bot.voice("block", admin, users=[victim], user=victim["id"], reason="spam")
    assert "can no longer save or use voices" in await bot.answer(blocked, "no longer")
    refused = await bot.api.wait_for(followup_of(payload := bot.say("Narrator", "again", alice)))
    assert refused.flags == EPHEMERAL and "stopped you" in refused.content
    await bot.api.wait_for(delete_of(payload))

    await bot.library.audit.settle()
    activity = bot.voice("activity", admin, limit=5)
    text = await bot.answer(activity, "Recent voice activity")
    assert "say “Narrator”" in text and f"<@{alice.user_id}>" in text and "first words" not in text  # hashed
    unblocked = bot.voice("unblock", admin, users=[victim], user=victim["id"])
    assert "may use voices again" in await bot.answer(unblocked, "again")
    assert len(backend.calls) == 1



def _takedown(bot, invoker: Invoker, name: str, owner: dict, *, kind: int = APPLICATION_COMMAND,
              focused: bool = False) -> dict:
    """`/voice delete name owner:@member` (or its autocomplete, which Discord sends without resolved users)."""
    options = [{**option("name", name), **({"focused": True} if focused else {})},
               {"name": "owner", "type": 6, "value": owner["id"]}]
    return bot.send(kind, subcommand("voice", "delete", options, users=None if focused else [owner]), invoker)


async def test_an_admin_finds_and_takes_down_a_members_private_voice(discord_bot):
    backend = FakeBackend()
    bot = await discord_bot(backend, library=True)
    alice, admin = Invoker(), Invoker(name="admin", permissions=ADMIN)
    await save_voice(bot, "Secret_one_", alice)
    await save_voice(bot, "Shared", alice, scope="server", clip=sine_clip(2.0))
    owner = user_payload(alice.user_id, "alice")

    listed = bot.voice("list", admin, users=[owner], user=owner["id"])
    text = await bot.answer(listed, "Voices of a member")
    assert f"<@{alice.user_id}>" in text and "**Secret\\_one\\_** · private" in text and "**Shared** · server" in text

    response = await bot.response(_takedown(bot, admin, "se", owner, kind=AUTOCOMPLETE, focused=True))
    assert response.json["data"]["choices"] == [{"name": "Secret_one_ (private)", "value": "Secret_one_"}]

    text = await bot.answer(_takedown(bot, admin, "secret_ONE_", owner), "Took down")
    assert text.startswith(f"Took down the voice “Secret\\_one\\_” of <@{alice.user_id}>")
    assert [v.name for v in await bot.library.voices(_member(alice))] == ["Shared"]
    assert len(backend.forgotten) == 1  # its clip left the backend's voice cache


async def test_a_member_naming_an_owner_is_refused_and_learns_nothing(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    alice, mallory = Invoker(), Invoker(name="mallory")
    await save_voice(bot, "Secret", alice)
    owner = user_payload(alice.user_id, "alice")
    answers = [await bot.answer(_takedown(bot, mallory, name, owner), "admins") for name in ("Secret", "Nothing")]
    assert answers == ["Only server admins can do that."] * 2
    assert "admins" in await bot.answer(bot.voice("list", mallory, users=[owner], user=owner["id"]), "admins")
    response = await bot.response(_takedown(bot, mallory, "s", owner, kind=AUTOCOMPLETE, focused=True))
    assert response.json["data"]["choices"] == []
    assert [v.name for v in await bot.library.voices(_member(alice))] == ["Secret"]

async def test_forget_me_asks_first_then_reports(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    alice = Invoker()
    await save_voice(bot, "Narrator", alice)
    question = bot.voice("forget-me", alice)
    asked = await bot.response(question)
    assert asked.flags == EPHEMERAL and "cannot be undone" in asked.content
    click = await bot.click(question, "Forget me", alice)
    text = await bot.answer(click, "forgotten you")
    assert "Voices deleted: 1 (Narrator)" in text and "Audio files deleted (reference clips, kept results): 1" in text
    assert await bot.library.voices(_member(alice)) == []


async def test_clone_this_voice_offers_saving_the_clip(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    alice = Invoker()
    voice_message = bot.attachment(CLIP, "voice-message.wav", "audio/wav")
    target = message_payload(snowflake(), "", author=user_payload(snowflake(), "bob"), attachments=[voice_message])
    menu = bot.send(APPLICATION_COMMAND, message_command("Clone this voice", target), alice)
    choice = await bot.response(menu)
    assert choice.flags == EPHEMERAL
    assert [b["label"] for b in components_of(choice)] == ["Clone once", "Save as my voice", "Save for this server"]

    click = await bot.click(menu, "Save as my voice", alice)
    modal = (await bot.response(click)).json
    assert modal["type"] == MODAL and modal["data"]["title"] == "Save as a voice"
    submit = bot.send(MODAL_SUBMIT, modal_submit(modal["data"], {"Voice name": "Bob's voice"}), alice)
    confirm = await bot.click(submit, "I confirm: save the voice", alice)
    await bot.answer(confirm, "Saved")
    [voice] = await bot.library.voices(_member(alice))
    assert voice.name == "Bob's voice" and voice.scope == "me"


def _member(invoker: Invoker):
    from commands.storage.voices import Member
    from tests.discord.fake_api import GUILD_ID

    return Member("discord", str(GUILD_ID), str(invoker.user_id))


async def test_a_locked_database_keeps_the_consent_form_open(discord_bot):
    import sqlite3

    bot = await discord_bot(FakeBackend(), library=True, database_timeout_s=0.5)
    alice = Invoker()
    attachment = bot.attachment(CLIP)
    question = bot.voice("save", alice, attachments=[attachment], name="Narrator", clip=attachment["id"])
    await bot.answer(question, "Before the voice is saved")
    lock = sqlite3.connect(bot.library.settings.data_dir / "voicebot.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        first = await bot.click(question, "I confirm: save the voice", alice)
        text = await bot.answer(first, "nothing was changed")
        assert CONSENT_STATEMENT in text  # the question is still there, under the error
        edit = bot.api.calls_to(lambda c: first["token"] in c.path and c.method == "PATCH")[-1]
        assert [b["label"] for b in components_of(edit)] == ["I confirm: save the voice", "Cancel"]
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    again = await bot.click(first, "I confirm: save the voice", alice)
    assert (await bot.answer(again, "Saved")).startswith("Saved “Narrator”")


async def test_nothing_the_bot_says_pings_anyone(discord_bot):
    bot = await discord_bot(FakeBackend(), library=True)
    payload = bot.say("@everyone <@&123>", "Hello")
    told = await bot.api.wait_for(followup_of(payload))
    assert "no voice called" in told.content
    assert told.json["allowed_mentions"]["parse"] == [] and not told.json["allowed_mentions"].get("users")
