"""Nothing lost: the interaction token's 15 minutes, refused routes, rate limits, outages and stalls.

Jobs that outlive the token start with an interaction 14 min 1 s old: the bot moves the progress at once (it does
so a minute before expiry), then the test moves the fake's clock past the token's life (`api.advance`) — the
bot's own clock still thinks the token lives, so it also meets Discord's 401 and must take the next route.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from backend.errors import BackendFailed
from bot.discord.calls import DiscordTiming
from commands.timing import CONSENT_LINE
from tests.clips import sine_clip
from tests.discord.fake_api import (
    ADMIN,
    APPLICATION_COMMAND,
    CHANNEL_ID,
    EPHEMERAL,
    Call,
    FakeDiscord,
    FakeMessage,
    Invoker,
    edit_of,
    followup_of,
    slash,
)
from tests.fakes import FakeBackend

CLIP = sine_clip(3.0)
LATE = 14 * 60 + 1  # seconds: past the bot's handoff point, a minute before the token dies
CHANNEL_MESSAGES = f"/api/v10/channels/{CHANNEL_ID}/messages"
FINAL = ("done in", "failed", "15 minutes only", "could not be delivered")


def is_progress(message: FakeMessage) -> bool:
    """A message showing a job's progress: public or DM text without the audio (not an ephemeral answer)."""
    return not message.files and not message.flags & EPHEMERAL and message.kind in ("original", "channel", "dm")


def stale(api: FakeDiscord, user_id: int) -> list[str]:
    """Progress messages of this user that still show an unfinished state."""
    return [m.content for m in api.messages_of(user_id)
            if is_progress(m) and not m.deleted and not any(mark in m.content for mark in FINAL)]


def created(kind: str, *, files: bool | None = None) -> Callable[[Call], bool]:
    """A request that created a message of `kind` (with or without files)."""
    return lambda c: c.created is not None and c.created.kind == kind and (files is None or bool(c.files) == files)


async def handed_off(bot, payload) -> Call:
    """Wait until the original response got its last words (the progress moved, or could not)."""
    return await bot.api.wait_for(lambda c: edit_of(payload)(c) and "15 minutes only" in c.content)


@pytest.mark.parametrize("stage", ["generating", "queued"])
async def test_progress_moves_to_the_channel_and_the_late_result_follows(discord_bot, stage):
    backend = FakeBackend(hold=True)
    bot = await discord_bot(backend, max_concurrent_jobs=1)
    if stage == "queued":  # someone else's job holds the only slot
        blocker = bot.clone(bot.attachment(CLIP), "first", invoker=Invoker())
        first_call = await backend.next_call()
    payload = bot.clone(bot.attachment(CLIP), "late", age_s=LATE)
    moved = await bot.api.wait_for(created("channel", files=False))
    note = await handed_off(bot, payload)
    assert moved.created.content.startswith(f"<@{bot.invoker.user_id}> ")
    assert moved.json["allowed_mentions"]["parse"] == [] and not moved.json["allowed_mentions"].get("users")  # no ping
    assert "/channels/" in note.content and "progress continues" in note.content
    if stage == "queued":
        await bot.api.wait_for(lambda c: c.created is None and c.method == "PATCH" and "queued, position 1" in c.content
                               and c.path.endswith(f"/messages/{moved.created.id}"))
    else:
        await bot.api.wait_for(lambda c: "generating speech" in c.content and c.path.endswith(str(moved.created.id)))

    bot.api.advance(120)  # Discord's clock: the token is dead now
    if stage == "queued":
        first_call.release()
        await bot.api.wait_for(followup_of(blocker))
    (await backend.next_call()).release()
    result = await bot.api.wait_for(created("channel", files=True))
    assert result.content.startswith(f"<@{bot.invoker.user_id}>") and CONSENT_LINE in result.content
    mentions = result.json["allowed_mentions"]
    assert mentions["parse"] == [] and mentions["users"] == [bot.invoker.user_id]  # only the user is pinged
    await bot.api.wait_for(lambda c: c.path.endswith(str(moved.created.id)) and "done in" in c.content)
    assert bot.api.original(payload).content == note.content  # its last words, never "generating speech…"
    assert stale(bot.api, bot.invoker.user_id) == []
    assert bot.service.queue.stats().failed == 0


async def test_channel_refused_progress_and_result_go_by_dm(discord_bot):
    backend = FakeBackend(hold=True)
    bot = await discord_bot(backend)
    bot.api.refuse_channel = True
    payload = bot.clone(bot.attachment(CLIP), "late", age_s=LATE)
    moved = await bot.api.wait_for(created("dm", files=False))
    note = await handed_off(bot, payload)
    assert note.content.endswith("progress continues in your direct messages.")
    bot.api.advance(120)
    (await backend.next_call()).release()
    result = await bot.api.wait_for(created("dm", files=True))
    assert result.files[0].filename == "late.wav" and CONSENT_LINE in result.content
    final = await bot.api.wait_for(lambda c: c.path.endswith(str(moved.created.id)) and "done in" in c.content)
    assert final.content.endswith("sent to you in a direct message.")
    assert stale(bot.api, bot.invoker.user_id) == []


async def test_no_route_left_the_result_is_kept_and_health_shows_it(discord_bot):
    backend = FakeBackend(hold=True)
    admin = Invoker(permissions=ADMIN)
    bot = await discord_bot(backend)
    bot.api.refuse_channel = True
    bot.api.refuse_dms.add(bot.invoker.user_id)
    payload = bot.clone(bot.attachment(CLIP), "late", age_s=LATE)
    note = await handed_off(bot, payload)
    assert "can't post in this channel or send you a direct message" in note.content
    bot.api.advance(120)
    (await backend.next_call()).release()
    await bot.bot.wait_for_flows(10)
    [kept] = bot.bot.undelivered.entries()
    assert kept.user_id == f"discord:{bot.invoker.user_id}" and kept.wav.read_bytes()[:4] == b"RIFF"
    assert "channel message: HTTP 403" in kept.reason and "direct message: HTTP 403" in kept.reason
    assert bot.api.original(payload).content == note.content
    assert stale(bot.api, bot.invoker.user_id) == []
    assert bot.service.queue.stats().failed == 1

    health = bot.send(APPLICATION_COMMAND, slash("tts-health", []), admin)
    report = await bot.api.wait_for(followup_of(health))
    fields = {f["name"]: f["value"] for e in report.embeds for f in e["fields"]}
    assert fields["Undelivered results"].startswith(f"1 kept in {kept.wav.parent}")
    assert fields["Newest undelivered"].startswith(f"{kept.job_id} ({kept.wav.name}) for discord:{bot.invoker.user_id}")
    assert report.embeds[0]["title"] == "Voice clone health: problems"


async def test_no_route_left_while_the_token_lives_the_user_is_told_privately(discord_bot):
    bot = await discord_bot(FakeBackend(), timing=DiscordTiming(progress_interval_s=0.05))
    bot.api.refuse_channel = True
    bot.api.refuse_dms.add(bot.invoker.user_id)
    payload = bot.clone(bot.attachment(CLIP), "hello")
    bot.api.fail_always(lambda c: followup_of(payload)(c) and bool(c.files), 403)
    told = await bot.api.wait_for(lambda c: followup_of(payload)(c) and c.flags == EPHEMERAL)
    [kept] = bot.bot.undelivered.entries()
    assert told.content == (f"Job {kept.job_id} failed: Discord did not let the bot post the audio here or send it "
                            "to you in a direct message. It is kept for you: ask an admin for it with the job id.")


async def test_failure_after_expiry_is_told_by_dm_not_in_the_channel(discord_bot):
    backend = FakeBackend(hold=True)
    bot = await discord_bot(backend)
    payload = bot.clone(bot.attachment(CLIP), "late", age_s=LATE)
    moved = await bot.api.wait_for(created("channel", files=False))
    await handed_off(bot, payload)
    bot.api.advance(120)
    (await backend.next_call()).fail(BackendFailed("The backend failed while generating."))
    dm = await bot.api.wait_for(created("dm"))
    assert dm.content.startswith("Job ") and dm.content.endswith("failed: The backend failed while generating.")
    await bot.api.wait_for(lambda c: c.method == "DELETE" and c.path.endswith(str(moved.created.id)))
    assert not [m for m in bot.api.messages.values() if m.kind == "channel" and "backend" in m.content]
    assert stale(bot.api, bot.invoker.user_id) == []


async def test_failure_after_expiry_with_dms_refused_ends_failed_without_details(discord_bot):
    backend = FakeBackend(hold=True)
    bot = await discord_bot(backend)
    bot.api.refuse_dms.add(bot.invoker.user_id)
    payload = bot.clone(bot.attachment(CLIP), "late", age_s=LATE)
    moved = await bot.api.wait_for(created("channel", files=False))
    await handed_off(bot, payload)
    bot.api.advance(120)
    (await backend.next_call()).fail(BackendFailed("The backend failed while generating."))
    final = await bot.api.wait_for(lambda c: c.path.endswith(str(moved.created.id)) and "failed" in c.content)
    assert final.content.endswith(": failed.") and "backend" not in final.content
    assert stale(bot.api, bot.invoker.user_id) == []


async def test_a_followup_outage_goes_to_the_channel(discord_bot):
    """5xx after 5xx on the upload: discord.py retries with growing sleeps; the deadline hands over to the channel."""
    bot = await discord_bot(FakeBackend(), timing=DiscordTiming(progress_interval_s=0.05, upload_s=2.5))
    payload = bot.clone(bot.attachment(CLIP), "hello")
    bot.api.fail_always(lambda c: followup_of(payload)(c) and bool(c.files), 502)
    result = await bot.api.wait_for(created("channel", files=True), timeout=20)
    assert result.files[0].filename == "hello.wav"
    assert len(bot.api.calls_to(lambda c: followup_of(payload)(c) and c.status == 502)) >= 2  # discord.py retried
    await bot.api.wait_for(lambda c: edit_of(payload)(c) and "done in" in c.content)


async def test_a_stalled_upload_meets_its_deadline(discord_bot):
    bot = await discord_bot(FakeBackend(), timing=DiscordTiming(progress_interval_s=0.05, upload_s=0.5))
    payload = bot.clone(bot.attachment(CLIP), "hello")
    bot.api.stall(lambda c: followup_of(payload)(c) and bool(c.files))
    result = await bot.api.wait_for(created("channel", files=True))
    assert result.files[0].filename == "hello.wav"
    await bot.api.wait_for(lambda c: edit_of(payload)(c) and "done in" in c.content)


async def test_429s_on_the_upload_and_the_edits_are_waited_out(discord_bot):
    """discord.py honours retry_after itself (this checks it does against the fake): the upload still arrives as
    the follow-up, and the progress message still ends done."""
    bot = await discord_bot(FakeBackend())
    payload = bot.clone(bot.attachment(CLIP), "hello")
    bot.api.fail_once(lambda c: followup_of(payload)(c) and bool(c.files), 429)
    bot.api.fail_once(lambda c: edit_of(payload)(c) and "done in" in c.content, 429)
    result = await bot.api.wait_for(lambda c: followup_of(payload)(c) and c.status == 200 and bool(c.files))
    assert result.files[0].filename == "hello.wav"
    done = await bot.api.wait_for(lambda c: edit_of(payload)(c) and "done in" in c.content and c.status == 200)
    assert len(bot.api.calls_to(lambda c: c.status == 429)) == 2 and done.content.startswith("Job ")
    assert not bot.api.calls_to(created("channel"))
