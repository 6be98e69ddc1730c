"""Whatever follows `/voice` or `/say`, the bot answers the user (privately, with a form or with a job) and
logs no ERROR; nothing it sends can broadcast (`<!channel>`, `<!here>`, `<!everyone>`) whatever was typed."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.slack.app import build_app
from bot.slack.listeners.commands.voice import SUBCOMMANDS
from bot.slack.pacing import Pacer
from bot.slack.web_client import web_client
from commands.settings import CommandSettings
from tests.fakes import FakeBackend
from tests.slack.conftest import UNPACED, SlackHarness, slack_services
from tests.slack.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack

BROADCASTS = ("<!channel", "<!here", "<!everyone")
NASTY = st.sampled_from(["<!channel>", "<!here|here>", "<@U1>", "<#C1>", "&lt;", "*", "_", "`", ":", "|",
                         "\u200b", "\u202e", "\x00", "\n", " " * 3, "Narrator", "narrator", "U1", "UADMIN", "999"])
ARGS = st.lists(st.one_of(NASTY, st.text(max_size=20)), max_size=6).map(" ".join)
TEXTS = st.one_of(st.text(max_size=300), st.builds(lambda sub, args: f"{sub} {args}",
                                                   st.sampled_from([*SUBCOMMANDS, "SAVE", "forget-me!"]), ARGS),
                  st.builds(lambda voice, text: f"{voice}: {text}", ARGS, ARGS))


def rendered(call_args: dict[str, Any]) -> list[str]:
    """What Slack would render as mrkdwn: a message's `text`, and every mrkdwn text object in its blocks or view
    (a form's plain-text fields and prefilled inputs render nothing)."""
    found = [str(call_args["text"])] if "text" in call_args and "view" not in call_args else []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(str(node.get("text", "")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(call_args.get("blocks"))
    walk(call_args.get("view"))
    return found


def test_any_text_gets_an_answer_and_broadcasts_nothing(logged_errors, tmp_path):
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()

    async def start() -> SlackHarness:
        fake = await FakeSlack().start()
        stack.push_async_callback(fake.close)
        services = await stack.enter_async_context(slack_services(
            FakeBackend(), CommandSettings(cooldown_s=0, max_jobs_per_user=50, _env_file=None), tmp_path,
            bot_token=BOT_TOKEN, file_origins=fake.file_origins, pacer=Pacer(UNPACED)))
        harness = SlackHarness(fake, build_app(services, web_client(BOT_TOKEN, fake.api_url), SIGNING_SECRET),
                               services, logged_errors)
        await harness.save_voice("Narrator")
        return harness

    h = loop.run_until_complete(start())

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(command=st.sampled_from(["/voice", "/say"]), text=TEXTS, user=st.sampled_from(["U1", "U2", "UADMIN"]))
    def answers(command: str, text: str, user: str) -> None:
        async def once() -> None:
            before = len(h.fake.calls)
            old = {id(call) for call in h.fake.calls}
            response = await h.dispatch(h.slash(command, text=text, user=user))
            assert response.status == 200
            # Bolt runs the listener after the acknowledgement: wait for its answer, then for any job it started
            await h.fake.wait_for(lambda c: id(c) not in old and (c.path.startswith("/response_url/")
                                                                  or c.method in ("views.open", "chat.postMessage")))
            await h.settle()
            new = h.fake.calls[before:]
            for sent in (text for call in new for text in rendered(call.args)):
                assert not any(mark in sent for mark in BROADCASTS), sent

        loop.run_until_complete(once())

    try:
        answers()
        assert not logged_errors.records, logged_errors.describe()
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
