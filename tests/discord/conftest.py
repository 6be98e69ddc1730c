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
from bot.discord.playback.guilds import PlaybackSettings
from backend.log_setup import setup_logging
from bot.settings import DiscordSettings
from commands.clone import CloneService
from commands.job_journal import JobJournaling
from commands.settings import CommandSettings
from commands.storage import Storage
from commands.storage.sql import open_storage
from commands.voice_library import VoiceLibrary
from tests.discord.fake_api import (
    APPLICATION_COMMAND,
    MESSAGE_COMPONENT,
    GUILD_ID,
    TOKEN,
    Call,
    FakeDiscord,
    Invoker,
    callback_of,
    clone_options,
    components_of,
    interaction,
    message_payload,
    option,
    slash,
    subcommand,
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

    @property
    def library(self) -> VoiceLibrary:
        assert self.bot.library is not None, "make the bot with library=True"
        return self.bot.library

    def voice(self, sub: str, invoker: Invoker | None = None, *, attachments: list[dict] | None = None,
              users: list[dict] | None = None, **options: Any) -> dict[str, Any]:
        """Invoke `/voice <sub>` with `options` (strings and integers; attachments and users by id)."""
        listed = [option(key, value) for key, value in options.items()]
        for attachment_option in [o for o in listed if o["name"] in ("clip",)]:
            attachment_option["type"] = 11
        for user_option in [o for o in listed if o["name"] == "user"]:
            user_option["type"] = 6
        return self.send(APPLICATION_COMMAND, subcommand("voice", sub, listed, attachments=attachments,
                                                          users=users), invoker)

    def say(self, voice: str, text: str, invoker: Invoker | None = None, **options: str) -> dict[str, Any]:
        listed = [option("voice", voice), option("text", text), *(option(k, v) for k, v in options.items())]
        return self.send(APPLICATION_COMMAND, slash("say", listed), invoker)

    async def click(self, question: dict[str, Any], label: str, invoker: Invoker | None = None) -> dict[str, Any]:
        """Click the button labelled `label` on the message `question`'s interaction last showed."""
        def shows_button(call: Call) -> bool:
            return question["token"] in call.path and any(b.get("label") == label for b in components_of(call))

        call = await self.api.wait_for(shows_button)
        custom_id = next(b["custom_id"] for b in components_of(call) if b.get("label") == label)
        message = self.api.original(question)
        target = message_payload(message.id, message.content, flags=message.flags)
        return self.send(MESSAGE_COMPONENT, {"custom_id": custom_id, "component_type": 2}, invoker, message=target)

    async def answer(self, payload: dict[str, Any], containing: str) -> str:
        """The text (content and embeds) the interaction's original response was given once it contained
        `containing`."""
        def shows(call: Call) -> bool:
            return question_token(call, payload) and containing in _text_of(call)

        return _text_of(await self.api.wait_for(shows))


MakeBot = Callable[..., Awaitable[DiscordHarness]]


def question_token(call: Call, payload: dict[str, Any]) -> bool:
    """A write to the interaction's original response (its callback or an edit through its token)."""
    return payload["token"] in call.path and call.method in ("POST", "PATCH") and "/webhooks/" in call.path \
        and call.path.endswith("@original") or call.path.endswith(f"{payload['token']}/callback")


def _text_of(call: Call) -> str:
    """The message's text and its embeds' text, one part a line."""
    parts = [call.content]
    for embed in call.embeds:
        parts += [embed.get("title") or "", embed.get("description") or "", (embed.get("footer") or {}).get("text", "")]
        parts += [f"{field['name']}: {field['value']}" for field in embed.get("fields", [])]
    return "\n".join(part for part in parts if part)


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
                storage: Storage | None = None, voice: PlaybackSettings | None = None, read_aloud: bool = False,
                **limits: Any) -> VoicebotClient:
    """A bot over `backend` that downloads attachments from `api`'s CDN only; with `storage`, a voice library."""
    service = CloneService(backend, command_settings(**limits))
    library = None
    if storage is not None:  # the bot process's wiring (`bot.services`): jobs journaled, a voice library
        service.use_journal(JobJournaling(storage))
        library = VoiceLibrary(storage, service)
    settings = DiscordSettings(_env_file=None, token=TOKEN,  # type: ignore[call-arg]
                               dev_guild_id=GUILD_ID if dev_guild else None)
    return VoicebotClient(service, settings, library=library, sync_global=sync_global, cdn=api.allowed_cdn,
                          timing=timing, voice=voice, read_aloud=read_aloud)


@pytest.fixture
async def discord_bot(fake_discord: FakeDiscordSession) -> AsyncIterator[MakeBot]:
    """A factory: `await discord_bot(backend_or_variants, sync_global=False, dev_guild=True, library=False,
    **limits)`; `library=True` opens a SQLite voice library and job journal in the bot's data directory (a fresh
    one unless `data_dir` names another bot's, as a restarted process would)."""
    bots: list[DiscordHarness] = []
    stores: list[Storage] = []

    async def make(backend: BackendClient | Mapping[str, BackendClient], *, library: bool = False,
                   **options: Any) -> DiscordHarness:
        storage = None
        if library:
            limits = {key: value for key, value in options.items() if key in CommandSettings.model_fields}
            options["data_dir"] = limits["data_dir"] = options.get("data_dir") or Path(
                tempfile.mkdtemp(prefix="voicebot-test-"))  # a second bot on a first one's data: a restart
            storage = await open_storage(command_settings(**limits))
            stores.append(storage)
        bot = make_client(backend, fake_discord.api, storage=storage, **options)
        await bot.login(TOKEN)  # GET /users/@me, GET /oauth2/applications/@me, then setup_hook (sync)
        harness = DiscordHarness(fake_discord.api, bot, bot.service, fake_discord.own_errors)
        bots.append(harness)
        return harness

    try:
        yield make
        for harness in bots:  # let every flow answer its user before the logs are judged
            if harness.bot.playback is not None:
                await harness.bot.playback.close()
            assert await harness.bot.wait_for_flows(10), "a clone flow was still running at the end of the test"
            await harness.service.queue.flush(timeout=5)
            if harness.bot.library is not None:
                await harness.bot.library.aclose()
    finally:
        for harness in bots:
            await harness.bot.close()
        for storage in stores:
            await storage.close()
