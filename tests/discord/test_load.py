"""30 users at once through discord.py against the fake API with Discord's rate limits and injected trouble.

Per-route buckets with X-RateLimit headers (the bot's 10 late jobs move their progress into one channel at once),
buckets used up by another client of the bot, shared-resource 429s on interaction routes, global 429s on bot-token routes and 500s on
uploads. Every user must get the audio, every progress message must end in a final state, and no message may be
edited more often than the product's interval — counted on the fake's clock, where Discord would count.
"""

from __future__ import annotations

import asyncio

from bot.discord.calls import DiscordTiming
from tests.clips import sine_clip
from tests.discord.fake_api import FakeMessage, Invoker
from tests.discord.fake_ratelimits import DEFAULT_LIMITS, Trouble
from tests.discord.test_delivery import FINAL, LATE, is_progress
from tests.fakes import FakeBackend

USERS, LATE_USERS = 30, 10
PRODUCT = DiscordTiming()


def edit_gaps(message: FakeMessage) -> list[float]:
    """Seconds between consecutive writes the bot chose to make (an original's deferral is Discord's placeholder,
    replaced at once; a posted message's creation counts as its first write)."""
    times = [at for at, _ in (message.history[1:] if message.kind == "original" else message.history)]
    return [later - earlier for earlier, later in zip(times, times[1:])]


async def test_thirty_users_through_rate_limits_and_500s(discord_bot):
    backend = FakeBackend(audio_seconds=1.0)
    bot = await discord_bot(backend, timing=PRODUCT, max_concurrent_jobs=4, max_queue=USERS, cooldown_s=0)
    api = bot.api
    api.ratelimits.limits = dict(DEFAULT_LIMITS)
    api.ratelimits.trouble = Trouble(exhaust_every=9, shared_429_every=7, global_429_every=4, upload_500_every=6)
    users = [Invoker() for _ in range(USERS)]
    clip = sine_clip(2.0)
    for index, user in enumerate(users):
        bot.clone(bot.attachment(clip), f"hello number {index}", invoker=user,
                  age_s=LATE if index < LATE_USERS else 0.0)
    await asyncio.sleep(0.1)
    assert await bot.bot.wait_for_flows(90), "some clone flows did not finish"

    received = {user.user_id for user in users
                if any(m.files and m.files[0].filename.endswith(".wav") for m in api.messages_of(user.user_id))}
    assert len(received) == USERS
    stale = {user.user_id: [m.content for m in api.messages_of(user.user_id)
                            if is_progress(m) and not m.deleted and not any(mark in m.content for mark in FINAL)]
             for user in users}
    assert {user: left for user, left in stale.items() if left} == {}
    too_close = [(m.kind, gap) for m in api.messages.values() for gap in edit_gaps(m)
                 if gap < PRODUCT.progress_interval_s - 1e-3]
    assert too_close == []
    assert len([m for m in api.messages.values() if m.kind == "channel" and not m.files]) == LATE_USERS
    assert bot.service.queue.stats().done == USERS
    # the trouble happened, and was survived
    refused = api.ratelimits.refused
    assert refused.get("user", 0) > 0 and refused.get("shared", 0) > 0 and refused.get("global", 0) > 0
    assert api.ratelimits.trouble.injected.get("upload_500", 0) > 0
