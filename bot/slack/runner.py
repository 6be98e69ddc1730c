"""`voicebot slack`: settings from the environment / `.env`, the backend, the app, its transport, and a graceful
shutdown.

Socket Mode (the default) opens a WebSocket to Slack with the app-level token: no public URL needed. HTTP mode
(SLACK_MODE=http) serves the Events/Interactivity endpoint on SLACK_PORT + SLACK_PATH and verifies every
request's signature with SLACK_SIGNING_SECRET before reading it (`bot.slack.http_mode`). The three Slack
secrets are registered with `backend.redaction` first thing, so no log line or message can show them. The
storage (the voice library's database, also holding the limits every bot process shares) is opened before
Slack is connected: a database that cannot be opened stops the bot with the reason. On SIGTERM or SIGINT the
bot stops taking clone jobs (users are told it is restarting), lets running jobs finish and upload for up to
VOICEBOT_SHUTDOWN_GRACE_S seconds, then disconnects; the storage closes last. Jobs it could not finish stay in
the job journal (their users are told they will continue); the next start resumes them before connecting
(`bot.slack.clone_flow.resume_jobs`).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import structlog
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from backend.errors import VoicebotError
from backend.log_setup import setup_logging
from backend.redaction import register_secrets
from bot.services import open_services
from bot.settings import BotSettings
from bot.slack.app import build_app
from bot.slack.clone_flow import resume_jobs
from bot.slack.http_mode import web_app
from bot.slack.services import SlackServices
from bot.slack.settings import SlackSettings
from bot.slack.slack_errors import SlackProblem, explain
from bot.slack.web_client import web_client
from commands.job_journal import taking_over

log = structlog.get_logger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGINT)
DOCS = "the README's Slack section"


def missing_settings_message(missing: list[str], mode: str) -> str:
    lines = "\n".join(f"  - {item}" for item in missing)
    return (f"The Slack bot cannot start in {mode} mode: set these in the environment or in .env "
            f"(see .env.example):\n{lines}\nCreating the app and finding the tokens: {DOCS}.")


@dataclass
class Transport:
    """A connected Socket Mode handler or a listening HTTP server."""

    description: str
    close: Callable[[], Awaitable[None]]
    port: int | None = None  # HTTP mode: the port actually bound (SLACK_PORT=0 picks a free one)


async def start_transport(app: AsyncApp, settings: SlackSettings) -> Transport:
    if settings.mode == "socket":
        assert settings.app_token is not None
        handler = AsyncSocketModeHandler(app, settings.app_token.get_secret_value().strip())
        await handler.connect_async()
        return Transport("Socket Mode", handler.close_async)
    assert settings.signing_secret is not None
    runner = web.AppRunner(web_app(app, settings.path, settings.signing_secret.get_secret_value().strip()))
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else settings.port
    return Transport(f"HTTP on {settings.host}:{port}{settings.path}", runner.cleanup, port=port)


async def check_token(client: AsyncWebClient) -> dict:
    """`auth.test` once at startup, so a wrong token is one clear line instead of failures on every request."""
    try:
        return (await client.auth_test()).data  # type: ignore[return-value]
    except SlackClientError as exc:
        raise explain(exc, "log in to Slack") from exc


async def serve(settings: SlackSettings, services: SlackServices, *, grace_s: float = 60.0,
                stop: asyncio.Event | None = None) -> None:
    """Connect and serve until `stop` is set (SIGTERM/SIGINT by default), then shut down gracefully."""
    assert settings.bot_token is not None
    client = web_client(settings.bot_token.get_secret_value().strip(), settings.api_url)
    identity = await check_token(client)
    secret = settings.signing_secret.get_secret_value().strip() if settings.signing_secret is not None else ""
    app = build_app(services, client, signing_secret=secret)
    loop = asyncio.get_running_loop()
    own_stop = stop is None
    stop = stop or asyncio.Event()
    if own_stop:
        for sig in SIGNALS:
            loop.add_signal_handler(sig, stop.set)
    await resume_jobs(services, client)  # jobs a previous process left: the Web API is all they need
    transport = await start_transport(app, settings)
    log.info("slack.started", transport=transport.description, team=identity.get("team"),
             bot_user=identity.get("user"), variants=services.clone.variant_names)
    try:
        async with taking_over(partial(resume_jobs, services, client)):  # and those of a process that died since
            await stop.wait()
        log.info("slack.stopping", grace_s=grace_s)
        if own_stop:
            for sig in SIGNALS:  # a second Ctrl-C gets the default behaviour: stop now
                loop.remove_signal_handler(sig)
        # Still connected while draining: new requests hear "restarting", running jobs can upload.
        await services.clone.queue.drain(timeout=grace_s)
        if not await services.idle(timeout=10.0):
            log.warning("slack.flows_still_running")
    finally:
        await transport.close()
        await services.clone.aclose()
        log.info("slack.stopped")


async def main(settings: SlackSettings, *, grace_s: float) -> None:
    """The clone service and the voice library on the storage (opened and migrated; its limits shared with
    every bot process on the database) around `serve`; they close after the job queue has drained, so the
    audit records of the last jobs are written."""
    assert settings.bot_token is not None
    async with open_services() as opened:
        services = SlackServices(opened.clone, opened.library, bot_token=settings.bot_token.get_secret_value().strip())
        await serve(settings, services, grace_s=grace_s)


def run_slack() -> None:
    """Run the Slack bot until SIGTERM/SIGINT. Exits with status 2 and a how-to when settings are missing or
    Slack rejects the token."""
    bot_settings = BotSettings()
    setup_logging(bot_settings.log_level, bot_settings.log_format)
    settings = SlackSettings()
    register_secrets([settings.bot_token, settings.app_token, settings.signing_secret])
    if missing := settings.missing():
        print(missing_settings_message(missing, settings.mode), file=sys.stderr)
        raise SystemExit(2)
    try:
        asyncio.run(main(settings, grace_s=bot_settings.shutdown_grace_s))
    except SlackProblem as exc:  # the operator reads this: the detail (which setting) included
        print(exc.operator_text, file=sys.stderr)
        raise SystemExit(2) from None
    except VoicebotError as exc:  # backend or database misconfiguration found at startup
        print(exc.operator_text, file=sys.stderr)
        raise SystemExit(1) from None
