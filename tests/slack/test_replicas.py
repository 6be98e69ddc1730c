"""Two Slack bot processes ("replicas") on one PostgreSQL database, built the way `voicebot slack` builds them
(`bot.services.open_services`): a voice saved through one speaks through the other, and a user's cooldown
started on one holds on the other. A real server (`tests.postgres_server`); skipped where its binaries are
missing, except in CI."""

from __future__ import annotations

from contextlib import AsyncExitStack

import bot.services
from backend.settings import BackendSettings
from bot.services import open_services
from bot.slack.app import build_app
from bot.slack.pacing import Pacer
from bot.slack.services import SlackServices
from bot.slack.web_client import web_client
from commands.settings import CommandSettings
from tests.fakes import FakeBackend
from tests.slack.conftest import UNPACED, SlackHarness
from tests.slack.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack


async def test_two_replicas_share_the_library_and_the_limits(postgres_url, tmp_path, monkeypatch, logged_errors):
    backend_a, backend_b = FakeBackend(), FakeBackend()
    backends = iter([backend_a, backend_b])
    monkeypatch.setattr(bot.services, "create_backend", lambda settings, variant=None: next(backends))
    # one database and one clips directory (shared storage, as the README asks of several processes)
    settings = CommandSettings(_env_file=None, data_dir=tmp_path, database_url=postgres_url, cooldown_s=60)
    fake = await FakeSlack().start()
    async with AsyncExitStack() as stack:
        replicas: list[SlackHarness] = []
        for _ in range(2):
            opened = await stack.enter_async_context(open_services(BackendSettings(_env_file=None), settings))
            services = SlackServices(opened.clone, opened.library, bot_token=BOT_TOKEN, ack_budget_s=5.0,
                                     file_origins=fake.file_origins, pacer=Pacer(UNPACED))
            app = build_app(services, web_client(BOT_TOKEN, fake.api_url), signing_secret=SIGNING_SECRET)
            replicas.append(SlackHarness(fake, app, services, logged_errors))
        a, b = replicas
        try:
            await a.save_voice("Narrator")
            listed = await b.command("/voice", "list")
            assert "• *Narrator* · yours" in listed["text"]

            await b.dispatch(b.slash("/say", text="Narrator: from the other replica"))
            await b.settle()
            (request,) = backend_b.calls
            assert request.text == "from the other replica"  # the clip saved by A, read by B
            assert "the voice *Narrator*" in fake.of("files.completeUploadExternal")[0].args["initial_comment"]

            await a.dispatch(a.slash("/say", text="Narrator: again, elsewhere"))
            await a.settle()
            assert "Slow down: you can start another voice clone in " in a.responses()[-1]["text"]
            assert not backend_a.calls
        finally:
            for replica in replicas:
                await replica.services.idle(timeout=10)
                await replica.services.clone.queue.drain(timeout=1)
    await fake.close()
