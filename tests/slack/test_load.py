"""Thirty users at once against Slack's published rate tiers: every one of them gets the audio.

The fake enforces the tiers (`PUBLISHED_LIMITS`: 429 + Retry-After past them), answers 500 to some upload POSTs
and 429 to some other calls, and runs Slack's clock `SPEED` times faster than the real one; the bot's own
budgets and intervals are shrunk by the same factor (`sped_up`), so a one-minute window lasts 60 / SPEED s.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict

from bot.slack.pacing import Pacing, Rate
from commands.settings import CommandSettings
from tests.clips import sine_clip
from tests.fakes import FakeBackend
from tests.slack.conftest import event_request
from tests.slack.fake_slack import BOT_USER_ID, PUBLISHED_LIMITS, TIER_3, Fault

SPEED = 20.0  # Slack seconds per real second
USERS = 30


def sped_up(pacing: Pacing, speed: float) -> Pacing:
    """The product's pacing with every interval divided by `speed` (deadlines kept: Retry-After is real time)."""
    return dataclasses.replace(
        pacing, edit_interval_s=pacing.edit_interval_s / speed,
        edits=Rate(pacing.edits.burst, pacing.edits.period_s / speed),
        posts=Rate(pacing.posts.burst, pacing.posts.period_s / speed),
        upload_retry_wait_s=pacing.upload_retry_wait_s / speed)


def most_in_any_window(times: list[float], window_s: float) -> int:
    times = sorted(times)
    start, most = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window_s:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_thirty_users_at_once_all_get_their_audio(slack):
    h = await slack(FakeBackend(), CommandSettings(cooldown_s=0, max_concurrent_jobs=4, _env_file=None),
                    pacing=sped_up(Pacing(), SPEED))
    h.fake.limits, h.fake.speed = dict(PUBLISHED_LIMITS), SPEED
    uploads_500 = Fault("/upload/", status=500, every=5)
    sporadic_429 = Fault("*", status=429, retry_after=1, every=23)
    h.fake.faults += [uploads_500, sporadic_429]
    clip = h.fake.host_file("voice.wav", sine_clip())

    def mention(n: int) -> dict:
        ts = f"1700000100.{n:06d}"
        return {"type": "app_mention", "user": f"U{n:02d}", "text": f"<@{BOT_USER_ID}> Hello number {n}",
                "ts": ts, "channel": "C1", "event_ts": ts, "files": [clip]}

    acks = await asyncio.gather(*(h.dispatch(event_request(mention(n), event_id=f"Ev{n}")) for n in range(USERS)))
    assert all(ack.status == 200 for ack in acks)
    await h.settle(timeout=120)

    # every user has their audio, in the thread of their own message
    completed = h.fake.accepted("files.completeUploadExternal")
    threads = {c.args["initial_comment"].split(">", 1)[0].removeprefix("<@"): c.args["thread_ts"] for c in completed}
    assert threads == {f"U{n:02d}": mention(n)["ts"] for n in range(USERS)}
    assert len(completed) == USERS and h.services.clone.queue.stats().done == USERS
    assert not h.services.undelivered.entries() and not h.fake.of("chat.postEphemeral")

    # no progress message is left stale: each one's last edit is its final state
    last_edit: dict[str, str] = {}
    for call in h.fake.accepted("chat.update"):
        last_edit[call.args["ts"]] = call.args["text"]
    progress = h.fake.accepted("chat.postMessage")
    assert len(progress) == USERS
    assert all(last_edit.get(p.reply["ts"], "").startswith(":white_check_mark:") for p in progress)

    # edits stayed within the workspace budget (burst 5 + 40 a minute): Slack's tier never had to refuse one,
    # and fewer than Tier 3's 50 fell in any minute of Slack's clock
    edits = h.fake.of("chat.update")
    assert not [c for c in edits if c.refused_by == "limit"]
    assert most_in_any_window([c.at for c in edits if c.refused_by is None], 60.0) < TIER_3.calls
    per_message: dict[str, int] = defaultdict(int)
    for call in edits:
        per_message[call.args["ts"]] += 1
    assert sum(per_message.values()) < USERS * 6  # coalesced: not one edit per queue move (~850 a minute before)

    # and the failures really happened
    assert uploads_500.fired >= 5 and sporadic_429.fired >= 5
