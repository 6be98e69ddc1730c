"""A restart of the Discord bot: jobs it could not finish are journaled, their users told they will continue, and
the next bot (on the same data directory) runs or delivers them through the interaction's routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.redaction import redact
from bot.discord.calls import DiscordTiming
from bot.discord.job_flow import resume_jobs
from tests.clips import sine_clip
from tests.discord.conftest import TEST_TIMING
from tests.discord.fake_api import CHANNEL_ID, EPHEMERAL, Invoker, followup_of
from tests.fakes import FakeBackend
from tests.storage.records import left_over


def channel_post(call) -> bool:
    return call.method == "POST" and call.path.endswith(f"/channels/{CHANNEL_ID}/messages")


async def test_a_queued_job_is_suspended_by_a_restart_and_delivered_by_the_next_bot(discord_bot):
    held = FakeBackend(hold=True)
    first = await discord_bot(held, library=True, max_concurrent_jobs=1)
    running = first.clone(first.attachment(sine_clip(2.0)), "Running when the bot stopped", Invoker())
    await held.next_call()
    queued = first.clone(first.attachment(sine_clip(2.0)), "Queued when the bot stopped", Invoker())
    await first.api.wait_for(lambda c: "queued, position 1" in c.content and queued["token"] in c.path)

    await first.service.queue.drain(timeout=0.01)
    for payload in (running, queued):
        told = await first.api.wait_for(lambda c: followup_of(payload)(c) and "will continue" in c.content)
        assert told.flags == EPHEMERAL and "submit" not in told.content
    assert await first.bot.wait_for_flows(5)

    backend = FakeBackend()
    second = await discord_bot(backend, library=True, data_dir=first.service.settings.data_dir)
    assert await resume_jobs(second.bot) == 2
    assert queued["token"] not in redact(f"token {queued['token']}")  # a secret again once read from the journal
    for payload, name in ((running, "running-when-the-bot-stopped.wav"), (queued, "queued-when-the-bot-stopped.wav")):
        notice = await second.api.wait_for(lambda c: followup_of(payload)(c) and "continues" in c.content)
        assert notice.flags == EPHEMERAL
        result = await second.api.wait_for(lambda c: followup_of(payload)(c) and bool(c.files))
        assert result.files[0].filename == name and result.flags == 0
    assert [call.text for call in backend.calls] == ["Running when the bot stopped", "Queued when the bot stopped"]
    assert await second.bot.wait_for_flows(5)
    await second.service.journal.flush()
    assert await left_over(second.service.journal.storage) == []


async def test_a_result_not_delivered_before_the_restart_goes_to_the_channel_once_the_token_is_too_old(
        discord_bot):
    stalling = True
    first = await discord_bot(FakeBackend(), library=True, timing=DiscordTiming(progress_interval_s=0.05,
                                                                                upload_s=0.3))
    first.api.stall(lambda c: stalling and bool(c.files))  # Discord takes no upload while the bot stops
    payload = first.clone(first.attachment(sine_clip(2.0)), "Finished before the restart")
    await first.api.wait_for(lambda c: followup_of(payload)(c) and bool(c.files))  # generated, uploading
    await first.service.queue.drain(timeout=0.01)
    assert await first.bot.wait_for_flows(5)
    [entry] = await left_over(first.service.journal.storage)
    assert entry.state == "finished"
    await first.service.journal.storage.journal.release()  # only looked at: the next bot takes it over

    stalling = False
    seen = len(first.api.calls)
    backend = FakeBackend()
    late = DiscordTiming(progress_interval_s=TEST_TIMING.progress_interval_s, handoff_s=15 * 60)  # token too old
    second = await discord_bot(backend, library=True, data_dir=first.service.settings.data_dir, timing=late)
    assert await resume_jobs(second.bot) == 1
    posted = await second.api.wait_for(lambda c: channel_post(c) and bool(c.files))
    user_id = payload["member"]["user"]["id"]
    assert posted.content.startswith(f"<@{user_id}>") and posted.files[0].filename == "finished-before-the-restart.wav"
    assert backend.calls == []  # the kept result, not a second generation
    assert await second.bot.wait_for_flows(5)
    assert not [c for c in second.api.calls[seen:] if payload["token"] in c.path]  # the token was not used
    await second.service.journal.flush()
    assert await left_over(second.service.journal.storage) == []


async def test_a_job_older_than_a_day_is_not_run_after_the_restart_and_its_user_hears_why(discord_bot):
    held = FakeBackend(hold=True)
    first = await discord_bot(held, library=True)
    payload = first.clone(first.attachment(sine_clip(2.0)), "Too late")
    await held.next_call()
    await first.service.queue.drain(timeout=0.01)
    assert await first.bot.wait_for_flows(5)

    backend = FakeBackend()
    second = await discord_bot(backend, library=True, data_dir=first.service.settings.data_dir)
    second.service.journal._now = lambda: datetime.now(UTC) + timedelta(hours=25)
    assert await resume_jobs(second.bot) == 1
    told = await second.api.wait_for(lambda c: followup_of(payload)(c) and "could not be finished" in c.content)
    assert told.flags == EPHEMERAL and "more than 24 hours" in told.content and "submit it again" in told.content
    assert await second.bot.wait_for_flows(5)
    assert backend.calls == [] and await left_over(second.service.journal.storage) == []
