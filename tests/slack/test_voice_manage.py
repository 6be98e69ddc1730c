"""`/voice list|info|delete|rename|forget-me` and the admin sub-commands (block, unblock, activity, a member's
voices and their takedown) through
slack-bolt: private answers, owners and admins checked on the server (Slack's `users.info`), clear refusals."""

from __future__ import annotations

import hashlib
import json

from tests.fakes import FakeBackend
from tests.clips import sine_clip
from tests.slack.conftest import form_values, interactive_request, save_values, say_values


async def names(h, user: str = "U1") -> list[str]:
    return [voice.name for voice in await h.services.library.storage.voices.owned_by("slack", user)]


async def test_list_shows_own_then_workspace_voices(slack):
    h = await slack(FakeBackend())
    empty = await h.command("/voice", "list")
    assert empty["response_type"] == "ephemeral" and "No saved voices yet" in empty["text"]
    await h.save_voice("Narrator")
    await h.save_voice("Announcer", user="U2", scope="server")
    await h.save_voice("Secret", user="U2")
    listed = await h.command("/voice", "list")
    assert listed["response_type"] == "ephemeral"
    lines = [line for line in listed["text"].splitlines() if line.startswith("•")]
    assert lines == ["• *Narrator* · yours · used 0×", "• *Announcer* · workspace voice by <@U2> · used 0×"]


async def test_help_and_unknown_sub_commands(slack):
    h = await slack(FakeBackend())
    assert "`/voice save [name]`" in (await h.command("/voice"))["text"]
    unknown = await h.command("/voice", "explode <!channel>")
    assert unknown["text"].startswith("There is no `/voice explode`.") and "/voice save" in unknown["text"]
    usage = await h.command("/voice", "info")
    assert usage["text"] == ":x: Which voice? `/voice info &lt;name&gt;`"  # Slack shows <name>


async def test_delete_by_the_owner_and_not_by_another_member(slack):
    h = await slack(FakeBackend())
    await h.save_voice("Narrator")
    (voice,) = await h.services.library.storage.voices.owned_by("slack", "U1")
    await h.save_voice("Shared", scope="server")
    refused = await h.command("/voice", "delete Shared", user="U2")
    assert refused["text"] == (":x: The voice “Shared” belongs to someone else; only its owner or a server admin "
                               "can change it.")
    hidden = await h.command("/voice", "delete Narrator", user="U2")
    assert "you have no voice called “narrator”" in hidden["text"].lower()  # a private voice is not even revealed
    done = await h.command("/voice", "delete narrator")
    assert done["text"] == ":wastebasket: Deleted the voice *Narrator* and its reference clip."
    assert await names(h) == ["Shared"]
    assert h.services.clone.variants["fake"].forgotten == [voice.clip_sha256]  # the backend's cache too


async def test_workspace_admins_may_delete_workspace_voices_only(slack):
    h = await slack(FakeBackend())
    await h.save_voice("Shared", scope="server")
    await h.save_voice("Mine")
    refused = await h.command("/voice", "delete Mine", user="UADMIN")
    assert "you have no voice called “mine”" in refused["text"].lower()
    done = await h.command("/voice", "delete Shared", user="UADMIN")
    assert done["text"].startswith(":wastebasket: Deleted the voice *Shared*")
    assert await names(h) == ["Mine"]
    assert [c.args["user"] for c in h.fake.of("users.info")] == ["UADMIN", "UADMIN"]  # asked Slack, server side



async def test_an_admin_lists_a_members_voices_and_takes_down_a_private_one(slack):
    h = await slack(FakeBackend())
    await h.save_voice("Secret")
    (secret,) = await h.services.library.storage.voices.owned_by("slack", "U1")
    await h.save_voice("Shared", scope="server")
    listed = await h.command("/voice", "list <@U1|alice>", user="UADMIN")
    assert listed["response_type"] == "ephemeral"
    lines = [line for line in listed["text"].splitlines() if line.startswith("•")]
    assert lines == ["• *Secret* · private · used 0×", "• *Shared* · workspace voice · used 0×"]
    done = await h.command("/voice", "delete secret <@U1|alice>", user="UADMIN")
    assert done["text"].startswith(":wastebasket: Took down the voice *Secret* of <@U1>.")
    assert await names(h) == ["Shared"]
    assert h.services.clone.variants["fake"].forgotten == [secret.clip_sha256]
    missing = await h.command("/voice", "delete Secret <@U1>", user="UADMIN")
    assert missing["text"] == ":x: That member has no voice called “secret” in this server. /voice list with the " \
                              "member shows their voices."
    usage = await h.command("/voice", "delete <@U1>", user="UADMIN")
    assert usage["text"].startswith(":x: Which voice?")


async def test_a_member_naming_an_owner_is_refused_before_any_lookup(slack):
    h = await slack(FakeBackend())
    await h.save_voice("Secret")
    refusal = ":x: Only the bot's admins can use this command."
    for text in ("delete Secret <@U1>", "delete Nothing <@U1>", "list <@U1>", "list U1"):
        assert (await h.command("/voice", text, user="U2"))["text"] == refusal
    assert await names(h) == ["Secret"]
    assert {c.args["user"] for c in h.fake.of("users.info")} == {"U2"}  # asked Slack, server side

async def test_rename_through_the_form(slack):
    h = await slack(FakeBackend())
    await h.save_voice("Narrator")
    await h.save_voice("Other")
    view = await h.open_view("/voice", "rename Narrator")
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["voice"]["element"]["initial_option"]["value"] == "Narrator"

    def values(new_name: str) -> dict:
        return {**say_values("Narrator"), "new_name": {"value": {"type": "plain_text_input", "value": new_name}}}

    taken = json.loads((await h.dispatch(h.submission(view, values("other")))).body)
    assert taken["errors"]["new_name"].startswith("You already have a voice called “Other”.")
    bad = json.loads((await h.dispatch(h.submission(view, values("<@U2>")))).body)
    assert list(bad["errors"]) == ["new_name"]
    assert (await h.dispatch(h.submission(view, values("Storyteller")))).body == ""
    await h.settle()
    assert sorted(await names(h)) == ["Other", "Storyteller"]
    assert h.responses()[-1]["text"] == ":pencil2: Renamed *Narrator* to *Storyteller*."


async def test_block_and_unblock_are_for_admins_and_take_effect(slack):
    backend = FakeBackend()
    h = await slack(backend)
    await h.save_voice("Shared", scope="server")
    refused = await h.command("/voice", "block <@U2|bob>", user="U3")
    assert refused["text"] == ":x: Only the bot's admins can use this command."
    blocked = await h.command("/voice", "block <@U2|bob>", user="UADMIN")
    assert "<@U2> can no longer save or use voices in this workspace" in blocked["text"]

    await h.dispatch(h.slash("/say", text="Shared: hello", user="U2"))
    await h.settle()
    assert "A server admin has stopped you from saving or using voices here." in h.responses()[-1]["text"]
    view = await h.open_view("/voice", "save", user="U2")
    clip = h.fake.host_file("bob.wav", b"RIFF", file_id="F0BOB")
    body = json.loads((await h.dispatch(h.submission(view, save_values("Bob", files=[clip]), user="U2"))).body)
    assert body["errors"]["name"] == "A server admin has stopped you from saving or using voices here."
    assert not backend.calls

    assert "may save and use voices again" in (await h.command("/voice", "unblock U2", user="UADMIN"))["text"]
    assert "was not blocked" in (await h.command("/voice", "unblock U2", user="UADMIN"))["text"]
    await h.dispatch(h.slash("/say", text="Shared: hello", user="U2"))
    await h.settle()
    assert len(backend.calls) == 1


async def test_activity_for_admins_of_this_workspace(slack):
    h = await slack(FakeBackend())
    await h.save_voice("Narrator")
    await h.dispatch(h.slash("/say", text="Narrator: first words"))
    await h.settle()
    view = await h.open_form(user="U2")  # a one-off /clone is recorded too
    clip = h.fake.host_file("voice.wav", sine_clip())
    await h.dispatch(h.submission(view, form_values("cloned words", files=[clip]), user="U2"))
    await h.settle()
    await h.services.library.audit.settle()
    refused = await h.command("/voice", "activity", user="U1")
    assert "Only the bot's admins" in refused["text"]
    report = await h.command("/voice", "activity 5 <@U1>", user="UADMIN")
    assert report["response_type"] == "ephemeral"
    (line,) = [line for line in report["text"].splitlines() if line.startswith("•")]
    assert "<@U1> · say “Narrator” · done" in line and "<#C1>" in line
    digest = hashlib.sha256(b"first words").hexdigest()[:12]
    assert f"text SHA-256 `{digest}…`" in line and "first words" not in line  # hashed by default
    everyone = await h.command("/voice", "activity", user="UADMIN")
    lines = [line for line in everyone["text"].splitlines() if line.startswith("•")]
    assert len(lines) == 2 and "<@U2> · clone · done" in lines[0]  # newest first
    none = await h.command("/voice", "activity <@U9>", user="UADMIN")
    assert "No voice activity" in none["text"]


async def test_forget_me_asks_first_then_deletes_everything(slack):
    backend = FakeBackend()
    h = await slack(backend)
    await h.save_voice("Narrator")
    await h.save_voice("Shared", scope="server")
    await h.dispatch(h.slash("/say", text="Narrator: hello"))
    await h.settle()
    prompt = await h.command("/voice", "forget-me")
    (button,) = [e for b in prompt["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["style"] == "danger" and button["confirm"]["confirm"]["text"] == "Delete everything"
    assert sorted(await names(h)) == ["Narrator", "Shared"]  # nothing happens before the button

    before = len(h.responses())
    await h.dispatch(interactive_request({
        "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"}, "api_app_id": "A1",
        "token": "legacy", "trigger_id": h.next_trigger_id(), "container": {"type": "message"},
        "channel": {"id": "C1"}, "response_url": f"{h.fake.base}/response_url/forget",
        "actions": [{"type": "button", "action_id": "forget_me", "value": "forget-me", "action_ts": "1.1"}]}))
    await h.fake.wait_for(lambda _: any("Voicebot forgot you" in r["text"] for r in h.responses()[before:]))
    report = h.responses()[-1]
    assert report["replace_original"] is True
    assert "Voices deleted: 2 (Narrator, Shared)" in report["text"]
    assert "Audio files deleted (reference clips, kept results): 2" in report["text"]
    assert "Job records deleted: 0" in report["text"]  # the /say job was delivered: its entry went with it
    assert await names(h) == []
    assert len(backend.forgotten) == 2


async def test_forget_me_deletes_the_results_slack_could_not_deliver(slack):
    h = await slack(FakeBackend())
    await h.save_voice("Narrator")
    h.fake.scopes.discard("files:write")  # neither the thread nor a DM takes the WAV: it is kept for the admins
    await h.dispatch(h.slash("/say", text="Narrator: kept for later"))
    await h.settle()
    assert len(h.services.undelivered.entries()) == 1
    await h.dispatch(interactive_request({
        "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1", "team_id": "T1"}, "api_app_id": "A1",
        "token": "legacy", "trigger_id": h.next_trigger_id(), "container": {"type": "message"},
        "response_url": f"{h.fake.base}/response_url/forget",
        "actions": [{"type": "button", "action_id": "forget_me", "value": "forget-me", "action_ts": "1.1"}]}))
    report = await h.fake.wait_for(lambda c: "Voicebot forgot you" in str(c.args.get("text")))
    assert "Undelivered results deleted: 1" in report.args["text"]
    assert h.services.undelivered.entries() == []
