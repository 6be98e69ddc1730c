"""No secret reaches a Discord user, an admin's health report or a log line, whichever backend fails and how.

The backend is configured as an operator would (VOICEBOT_HTTP_URL with a password and an API key in its query,
VOICEBOT_HTTP_TOKEN, Modal's token in MODAL_TOKEN_*) and built by `bot.services.build_service`, as `voicebot
discord` builds it; then clones fail through the real HTTP and Modal clients, with failures that echo secrets.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from types import SimpleNamespace

import modal
import modal.exception
import pytest
from aiohttp import web

from backend import redaction
from backend.clients.failures import FAILED, NOT_SET_UP, UNREACHABLE
from backend.log_setup import setup_logging
from backend.settings import BackendSettings
from bot.services import build_service
from tests.clips import sine_clip
from tests.discord.conftest import command_settings
from tests.discord.fake_api import ADMIN, APPLICATION_COMMAND, TOKEN, Invoker, followup_of, slash
from tests.discord.test_clone import ephemeral_error

CLIP = sine_clip(2.0)
PASSWORD, QUERY_KEY = "hunter2", "k3y"
HTTP_TOKEN = "http-tok-7Qv2mZx9"
MODAL_ID, MODAL_SECRET = "modal-id-51f0c2", "modal-secret-9d8e7f"
SECRETS = (PASSWORD, QUERY_KEY, HTTP_TOKEN, MODAL_ID, MODAL_SECRET, TOKEN)


@pytest.fixture(autouse=True)
def registered_secrets(monkeypatch):
    """What `build_service` registers stays within the test."""
    monkeypatch.setattr(redaction, "_secrets", set())


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def secret_url(host_port: str) -> str:
    return f"http://voicebot:{PASSWORD}@{host_port}/?api_key={QUERY_KEY}"


def http_service(monkeypatch, url: str):
    """The clients `voicebot discord` builds from this environment."""
    monkeypatch.setenv("VOICEBOT_BACKEND", "http")
    monkeypatch.setenv("VOICEBOT_HTTP_URL", url)
    monkeypatch.setenv("VOICEBOT_HTTP_TOKEN", HTTP_TOKEN)
    return build_service(BackendSettings(_env_file=None), command_settings()).variants  # type: ignore[call-arg]


@pytest.fixture
async def echoing_server() -> AsyncIterator[str]:
    """A voice service that fails every call and, like some servers do, echoes the credential it was sent."""

    async def fail(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return web.json_response({"error": "internal", "message": f"upstream refused credential {token}"},
                                 status=500)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fail)
    runner = web.AppRunner(app, access_log=None)  # a remote service: its own request log is not the bot's
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    await runner.cleanup()


def assert_no_secret(text: str) -> None:
    leaked = [secret for secret in SECRETS if secret in text]
    assert not leaked, f"{leaked} in: {text}"


async def health_value(bot) -> str:
    payload = bot.send(APPLICATION_COMMAND, slash("tts-health", []), Invoker(permissions=ADMIN))
    [embed] = (await bot.api.wait_for(followup_of(payload))).embeds
    return {f["name"]: f["value"] for f in embed["fields"]}["Backend"]


async def test_unreachable_http_backend_users_read_no_url_admins_read_the_redacted_detail(discord_bot, monkeypatch):
    port = closed_port()
    bot = await discord_bot(http_service(monkeypatch, secret_url(f"127.0.0.1:{port}")))
    message = await ephemeral_error(bot, bot.clone(bot.attachment(CLIP), "hello"))
    job_id = message.split()[1]
    assert message == f"Job {job_id} failed: {UNREACHABLE}"
    for operator_only in ("127.0.0.1", str(port), "http", "VOICEBOT_", PASSWORD, QUERY_KEY):
        assert operator_only not in message

    value = await health_value(bot)
    assert value == (f"unreachable: {UNREACHABLE} (http://127.0.0.1:{port}/health cannot be reached (ConnectError): "
                     "check VOICEBOT_HTTP_URL and that the service runs)")


async def test_wrong_http_path_admins_read_the_host_without_credentials(discord_bot, fake_discord, monkeypatch):
    """The fake Discord server answers 404 to /health: a VOICEBOT_HTTP_URL pointing at the wrong server."""
    host_port = fake_discord.api.base.removeprefix("http://")
    bot = await discord_bot(http_service(monkeypatch, secret_url(host_port)))
    value = await health_value(bot)
    assert value == f"unreachable: {NOT_SET_UP} (http://{host_port}/health does not exist (HTTP 404): check " \
                    "VOICEBOT_HTTP_URL)"
    [health_call] = [c for c in bot.api.calls if c.path == "/health"]
    assert health_call.query == {"api_key": QUERY_KEY}  # the key goes to its own host, with every request


def fake_modal(monkeypatch, failures: list[BaseException]) -> None:
    """`modal.Cls.from_name(...)().<method>.remote.aio` (and the streaming `.remote_gen.aio` a clone with progress
    uses) raises the next of `failures`."""

    async def aio(*args):
        raise failures.pop(0)

    async def gen(*args):
        raise failures.pop(0)
        yield  # an async generator, as `.remote_gen.aio` returns

    class Service:
        def __getattr__(self, method):
            return SimpleNamespace(remote=SimpleNamespace(aio=aio), remote_gen=SimpleNamespace(aio=gen))

    monkeypatch.setattr(modal.Cls, "from_name", lambda app_name, class_name: Service)


async def test_no_secret_in_any_log_line_or_discord_message(discord_bot, monkeypatch, capsys, echoing_server):
    """Clones fail through the HTTP client (service down; a server echoing the token) and the Modal client
    (credentials, deployment, network, a crash quoting the token); every log line of the process (bot, commands,
    clients, discord.py, aiohttp), every message to Discord and the health report stay free of secrets."""
    setup_logging("DEBUG")  # onto the captured stderr
    monkeypatch.setenv("MODAL_TOKEN_ID", MODAL_ID)
    monkeypatch.setenv("MODAL_TOKEN_SECRET", MODAL_SECRET)
    down = await discord_bot(http_service(monkeypatch, secret_url(f"127.0.0.1:{closed_port()}")))
    echoing = await discord_bot(http_service(monkeypatch, secret_url(echoing_server)))
    monkeypatch.setenv("VOICEBOT_BACKEND", "modal")
    modal_settings = BackendSettings(_env_file=None)  # type: ignore[call-arg]
    on_modal = await discord_bot(build_service(modal_settings, command_settings()).variants)
    fake_modal(monkeypatch, [
        modal.exception.AuthError(f"token {MODAL_ID}:{MODAL_SECRET} rejected"),
        modal.exception.NotFoundError("App 'voicebot-tts' not found"),
        modal.exception.ConnectionError("modal.com unreachable"),
        RuntimeError(f"remote crashed holding {MODAL_SECRET} and {HTTP_TOKEN}"),
        modal.exception.AuthError(f"token {MODAL_SECRET} rejected"),  # for /tts-health
    ])

    told = [await ephemeral_error(down, down.clone(down.attachment(CLIP), "hello", invoker=Invoker())),
            await ephemeral_error(echoing, echoing.clone(echoing.attachment(CLIP), "hello", invoker=Invoker()))]
    told += [await ephemeral_error(on_modal, on_modal.clone(on_modal.attachment(CLIP), "hi", invoker=Invoker()))
             for _ in range(4)]
    assert [message.split(": ", 1)[1] for message in told] == [UNREACHABLE, FAILED, NOT_SET_UP, NOT_SET_UP,
                                                               UNREACHABLE, FAILED]
    health = [await health_value(bot) for bot in (down, echoing, on_modal)]
    assert "modal token new" in health[2]
    on_modal.logged_errors.records.clear()  # the crash is logged at ERROR, with its (redacted) traceback

    logged = capsys.readouterr().err
    for event in ("http.failed", "modal.failed", "modal.crashed", "job.failed", "Traceback"):
        assert event in logged
    assert logged.count("[redacted]") >= 3  # the echoed HTTP token, the Modal token quoted twice
    assert_no_secret(logged)
    for bot in (down, echoing, on_modal):
        assert_no_secret(json.dumps([call.json for call in bot.api.calls]))
