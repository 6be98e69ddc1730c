"""HTTP mode's endpoint: anything unsigned is refused before it is parsed (401), a signed body that does not
parse is a 400, and neither leaves an ERROR or a traceback in the log (the autouse `logged_errors` fixture)."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.app import build_app
from bot.slack.http_mode import MAX_BODY_BYTES
from bot.slack.runner import start_transport
from bot.slack.settings import SlackSettings
from commands.settings import CommandSettings
from tests.fakes import FakeBackend
from tests.slack.conftest import sign, slack_services
from tests.slack.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack

FORM = "application/x-www-form-urlencoded"
MALFORMED = [
    (b"{", "application/json"),
    (b"[1, 2]", "application/json"),
    (b'"text"', "application/json"),
    (b"payload=%7Bnot-json", FORM),
    (b"payload=%5B%5D", FORM),
    (b"payload=42", FORM),
    (b'{"type": "view_submission", "team": "T1", "user": 7}', "application/json"),
]
NOT_UTF8 = (b"\xff\xfe{}", "application/json")


@dataclass
class Endpoint:
    url: str
    fake: FakeSlack

    async def post(self, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> int:
        async with (aiohttp.ClientSession() as session,
                    session.post(self.url, data=body, headers={"Content-Type": content_type, **(headers or {})})
                    as response):
            return response.status


@asynccontextmanager
async def serving() -> AsyncIterator[Endpoint]:
    """The bot's HTTP-mode endpoint on a free port, in front of a fake Slack; closed (jobs idle first) on exit."""
    fake = await FakeSlack().start()
    with tempfile.TemporaryDirectory() as data_dir:
        async with slack_services(FakeBackend(), CommandSettings(_env_file=None), Path(data_dir),
                                  bot_token=BOT_TOKEN) as services:
            app = build_app(services, AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url), SIGNING_SECRET)
            settings_ = SlackSettings(mode="http", host="127.0.0.1", port=0, bot_token=BOT_TOKEN,
                                      signing_secret=SIGNING_SECRET, _env_file=None)
            transport = await start_transport(app, settings_)
            try:
                yield Endpoint(f"http://127.0.0.1:{transport.port}/slack/events", fake)
            finally:
                await services.idle(timeout=5)
                await transport.close()
                await fake.close()


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    async with serving() as served:
        yield served


@pytest.mark.parametrize(("body", "content_type"), [*MALFORMED, NOT_UTF8])
async def test_malformed_unsigned_bodies_are_401_without_an_error_log(endpoint, body, content_type):
    assert await endpoint.post(body, content_type) == 401
    bad_headers = [{"X-Slack-Request-Timestamp": "not-a-number", "X-Slack-Signature": "v0=" + "0" * 64},
                   {"X-Slack-Request-Timestamp": "1", "X-Slack-Signature": "v0=é"},
                   {"X-Slack-Request-Timestamp": "１２３", "X-Slack-Signature": "v0=" + "0" * 64}]
    for headers in bad_headers:
        assert await endpoint.post(body, content_type, headers) == 401
    assert not endpoint.fake.calls  # refused before Bolt (which would have called auth.test)


@pytest.mark.parametrize(("body", "content_type"), MALFORMED)
async def test_malformed_signed_bodies_are_400_without_an_error_log(endpoint, body, content_type):
    assert await endpoint.post(body, content_type, sign(body)) == 400


async def test_a_body_that_is_not_utf8_cannot_be_signed(endpoint):
    body, content_type = NOT_UTF8
    assert await endpoint.post(body, content_type, sign(body)) == 401


async def test_an_oversized_body_is_refused_unread(endpoint):
    assert await endpoint.post(b"a" * (MAX_BODY_BYTES + 1), FORM) == 413


async def test_other_methods_and_paths_are_not_served(endpoint):
    async with aiohttp.ClientSession() as session:
        async with session.get(endpoint.url) as response:
            assert response.status == 405
        async with session.post(endpoint.url + "/x", data=b"{}") as response:
            assert response.status == 404


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=512) | st.text(max_size=256).map(str.encode)
       | st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                  max_size=4),
                      max_leaves=12).map(lambda value: json.dumps(value).encode()),
       content_type=st.sampled_from(["application/json", FORM, "text/plain"]), signed=st.booleans())
def test_any_body_gets_an_answer_not_a_crash(logged_errors, body, content_type, signed):
    """Whatever the bytes, signed or not, the endpoint answers 2xx/4xx and logs no ERROR."""

    async def post_once() -> int:
        async with serving() as served:
            return await served.post(body, content_type, sign(body) if signed else None)

    status = asyncio.run(post_once())
    assert status in (200, 400, 401, 404) and (signed or status == 401)
    assert not logged_errors.records, logged_errors.describe()
