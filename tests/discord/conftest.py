"""The Discord harness: a real `VoicebotClient` logged in against `FakeDiscord`, over a `CloneService`.

    async def test_x(discord_bot):
        bot = await discord_bot(FakeBackend())              # logs in, syncs commands to the dev guild
        payload = bot.clone(bot.attachment(clip), "Hello")   # feeds INTERACTION_CREATE through discord.py
        followup = await bot.api.wait_for(followup_of(payload))

Every test fails if anything logs an ERROR on the `discord` logger (errors inside discord.py's tasks only
show up there) or on the project's own loggers (a test that provokes one checks and clears `logged_errors`).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from discord.http import Route

from backend.clients.base import BackendClient
from bot.discord.calls import DiscordTiming
from bot.discord.client import VoicebotClient
from backend.log_setup import setup_logging
from bot.settings import DiscordSettings
from commands.clone import CloneService
from commands.settings import CommandSettings
from tests.discord.fake_api import (
    APPLICATION_COMMAND,
    GUILD_ID,
    TOKEN,
    Call,
    FakeDiscord,
    Invoker,
    callback_of,
    clone_options,
    interaction,
)
from tests.log_records import ErrorRecords

OWN_LOGGERS = ("bot", "commands", "backend")




@pytest.fixture(autouse=True)
def project_logging() -> AsyncIterator[None]:
    """structlog routed through stdlib logging (as `voicebot discord` runs it), restored afterwards."""
    root = logging.getLogger()
    handlers, level, config = list(root.handlers), root.level, structlog.get_config()
    setup_logging("DEBUG")
    yield
    root.handlers, root.level = handlers, level
    structlog.configure(**config)


@dataclass
class DiscordHarness:
    api: FakeDiscord
    bot: VoicebotClient
    service: CloneService
    logged_errors: ErrorRecords  # ERROR records of bot/commands/backend: a test that provokes one clears it
    invoker: Invoker = field(default_factory=Invoker)

    def attachment(self, data: bytes, filename: str = "reference.wav", content_type: str | None = "audio/wav",
                   **kwargs: Any) -> dict[str, Any]:
        return self.api.attachment(data, filename, content_type, **kwargs)

    def send(self, itype: int, data: dict[str, Any], invoker: Invoker | None = None, **kwargs: Any) -> dict[str, Any]:
        """Deliver an interaction the way the gateway does; returns its payload (id and token for predicates)."""
        payload = interaction(itype, data, invoker or self.invoker, **kwargs)
        self.api.register(payload)
        self.bot._connection.parse_interaction_create(payload)
        return payload

    def clone(self, attachment: dict[str, Any] | None, text: str = "Hello from the test",
              invoker: Invoker | None = None, *, upload_limit: int | None = None, age_s: float = 0.0,
              **options: str) -> dict[str, Any]:
        """Invoke `/clone` (options: ref_text, language, variant)."""
        extra: dict[str, Any] = {"age_s": age_s}
        if upload_limit is not None:
            extra["upload_limit"] = upload_limit
        return self.send(APPLICATION_COMMAND, clone_options(attachment, text, **options), invoker, **extra)

    async def response(self, payload: dict[str, Any]) -> Call:
        return await self.api.wait_for(callback_of(payload))


MakeBot = Callable[..., Awaitable[DiscordHarness]]


def command_settings(**overrides: Any) -> CommandSettings:
    """Test limits, never read from the environment or a developer's .env; a fresh data directory."""
    values: dict[str, Any] = {"max_concurrent_jobs": 2, "max_jobs_per_user": 2, "cooldown_s": 30.0,
                              "max_queue": 10, "job_timeout_s": 30.0,
                              "data_dir": Path(tempfile.mkdtemp(prefix="voicebot-test-"))}
    return CommandSettings(_env_file=None, **{**values, **overrides})  # type: ignore[call-arg]


@dataclass
class FakeDiscordSession:
    """The fake API with `Route.BASE` pointed at it, and the ERROR records the test will be judged on."""

    api: FakeDiscord
    discord_errors: ErrorRecords
    own_errors: ErrorRecords


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscordSession]:
    api = FakeDiscord()
    await api.start()
    old_base, Route.BASE = Route.BASE, api.api_base  # every REST and webhook URL is built from this
    session = FakeDiscordSession(api, ErrorRecords(), ErrorRecords())
    logging.getLogger("discord").addHandler(session.discord_errors)
    for name in OWN_LOGGERS:
        logging.getLogger(name).addHandler(session.own_errors)
    try:
        yield session
        await asyncio.sleep(0.05)  # let trailing library tasks log
        assert not session.discord_errors.records, session.discord_errors.describe()
        assert not session.own_errors.records, session.own_errors.describe()
    finally:
        logging.getLogger("discord").removeHandler(session.discord_errors)
        for name in OWN_LOGGERS:
            logging.getLogger(name).removeHandler(session.own_errors)
        Route.BASE = old_base
        await api.stop()


# Progress edits coalesced over a short interval, so flows take no longer than they must (the load test uses the
# product's interval).
TEST_TIMING = DiscordTiming(progress_interval_s=0.05)


def make_client(backend: BackendClient | Mapping[str, BackendClient], api: FakeDiscord, *,
                sync_global: bool = False, dev_guild: bool = True, timing: DiscordTiming = TEST_TIMING,
                **limits: Any) -> VoicebotClient:
    """A bot over `backend` that downloads attachments from `api`'s CDN only."""
    service = CloneService(backend, command_settings(**limits))
    settings = DiscordSettings(_env_file=None, token=TOKEN,  # type: ignore[call-arg]
                               dev_guild_id=GUILD_ID if dev_guild else None)
    return VoicebotClient(service, settings, sync_global=sync_global, cdn=api.allowed_cdn, timing=timing)


@pytest.fixture
async def discord_bot(fake_discord: FakeDiscordSession) -> AsyncIterator[MakeBot]:
    """A factory: `await discord_bot(backend_or_variants, sync_global=False, dev_guild=True, **limits)`."""
    bots: list[DiscordHarness] = []

    async def make(backend: BackendClient | Mapping[str, BackendClient], **options: Any) -> DiscordHarness:
        bot = make_client(backend, fake_discord.api, **options)
        await bot.login(TOKEN)  # GET /users/@me, GET /oauth2/applications/@me, then setup_hook (sync)
        harness = DiscordHarness(fake_discord.api, bot, bot.service, fake_discord.own_errors)
        bots.append(harness)
        return harness

    try:
        yield make
        for harness in bots:  # let every flow answer its user before the logs are judged
            assert await harness.bot.wait_for_flows(10), "a clone flow was still running at the end of the test"
            await harness.service.queue.flush(timeout=5)
    finally:
        for harness in bots:
            await harness.bot.close()
