"""The Slack harness: the real `AsyncApp` (signature check, authorization via `auth.test`, listener matching,
ack/respond) with an `AsyncWebClient` pointed at `FakeSlack`, over a `CloneService`.

    async def test_x(slack):
        h = await slack(FakeBackend())
        response = await h.dispatch(h.slash("/clone"))        # a signed HTTP request, as Slack sends it
        opened = await h.fake.wait_for("views.open")

Every test fails if anything logs an ERROR (Bolt logs listener exceptions; a test that provokes one clears
`logged_errors`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.parse
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from backend.clients.base import BackendClient
from backend.log_setup import setup_logging
from bot.services import voice_library
from bot.slack.app import build_app
from bot.slack.listeners.shortcuts.clone_this_voice import CALLBACK_ID
from bot.slack.modals import FILE_ACTION, LANGUAGE, REF_TEXT, REFERENCE, TEXT, VALUE_ACTION, VARIANT
from bot.slack.voice_forms import CONSENT, CONSENT_ACTION, NAME, SCOPE, SCOPE_ACTION, VOICE, VOICE_ACTION
from bot.slack.pacing import Pacer, Pacing, Rate
from bot.slack.services import SlackServices
from bot.slack.web_client import web_client
from commands.clone import CloneService
from commands.settings import CommandSettings
from tests.clips import sine_clip
from tests.log_records import ErrorRecords
from tests.slack.fake_slack import BOT_TOKEN, BOT_USER_ID, SIGNING_SECRET, TEAM_ID, FakeSlack


@pytest.fixture(autouse=True)
def logged_errors() -> Iterator[ErrorRecords]:
    """structlog routed through stdlib logging (as `voicebot slack` runs it), restored afterwards; the test
    fails if anything logged an ERROR (a test that provokes one clears `records`)."""
    root = logging.getLogger()
    handlers, level, config = list(root.handlers), root.level, structlog.get_config()
    setup_logging("DEBUG")
    errors = ErrorRecords()
    root.addHandler(errors)
    yield errors
    root.handlers, root.level = handlers, level
    structlog.configure(**config)
    assert not errors.records, errors.describe()


def sign(body: str | bytes, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 request signature: hex HMAC-SHA256 of "v0:{timestamp}:{body}" with the signing secret."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    raw = body if isinstance(body, bytes) else body.encode()
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    return {"x-slack-request-timestamp": ts, "x-slack-signature": f"v0={digest}"}


def signed(body: str, content_type: str, **sign_args: Any) -> AsyncBoltRequest:
    headers = {"content-type": [content_type], **{k: [v] for k, v in sign(body, **sign_args).items()}}
    return AsyncBoltRequest(body=body, headers=headers)


def form_request(fields: dict[str, Any], **sign_args: Any) -> AsyncBoltRequest:
    return signed(urllib.parse.urlencode(fields), "application/x-www-form-urlencoded", **sign_args)


def interactive_request(payload: dict[str, Any]) -> AsyncBoltRequest:
    """Shortcuts and view submissions arrive form-encoded as `payload=<json>`."""
    return form_request({"payload": json.dumps(payload)})


def event_request(event: dict[str, Any], event_id: str = "Ev1") -> AsyncBoltRequest:
    body = {"token": "legacy", "team_id": TEAM_ID, "api_app_id": "A1", "type": "event_callback",
            "event_id": event_id, "event_time": int(time.time()), "event": event,
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True,
                                "is_enterprise_install": False, "enterprise_id": None}]}
    return signed(json.dumps(body), "application/json")


def form_values(text: str | None = "Hello from Slack", *, files: list[dict[str, Any]] | None = None,
                language: str | None = "Japanese", ref_text: str | None = None,
                variant: str | None = None) -> dict[str, Any]:
    """`view.state.values` of a submitted clone form; `files=None` leaves out the file picker (shortcut form)."""
    values: dict[str, Any] = {
        TEXT: {VALUE_ACTION: {"type": "plain_text_input", "value": text}},
        REF_TEXT: {VALUE_ACTION: {"type": "plain_text_input", "value": ref_text}},
        LANGUAGE: {VALUE_ACTION: {"type": "static_select", "selected_option": None if language is None else {
            "text": {"type": "plain_text", "text": language}, "value": language}}},
    }
    if files is not None:
        values[REFERENCE] = {FILE_ACTION: {"type": "file_input", "files": files}}
    if variant is not None:
        values[VARIANT] = {VALUE_ACTION: {"type": "static_select", "selected_option": {
            "text": {"type": "plain_text", "text": variant}, "value": variant}}}
    return values


def save_values(name: str | None = "Narrator", *, files: list[dict[str, Any]] | None = None, scope: str = "me",
                consent: bool = True, transcript: str | None = None) -> dict[str, Any]:
    """`view.state.values` of a submitted save form; `files=None` leaves out the file picker (shortcut form)."""
    values: dict[str, Any] = {
        NAME: {VALUE_ACTION: {"type": "plain_text_input", "value": name}},
        REF_TEXT: {VALUE_ACTION: {"type": "plain_text_input", "value": transcript}},
        SCOPE: {SCOPE_ACTION: {"type": "radio_buttons", "selected_option": {
            "text": {"type": "plain_text", "text": scope}, "value": scope}}},
        CONSENT: {CONSENT_ACTION: {"type": "checkboxes", "selected_options": [
            {"text": {"type": "plain_text", "text": "I confirm"}, "value": "confirmed"}] if consent else []}},
    }
    if files is not None:
        values[REFERENCE] = {FILE_ACTION: {"type": "file_input", "files": files}}
    return values


def say_values(voice: str | None, text: str | None = "Hello from a saved voice",
               language: str = "Auto") -> dict[str, Any]:
    """`view.state.values` of a submitted say form."""
    return {
        VOICE: {VOICE_ACTION: {"type": "external_select", "selected_option": None if voice is None else {
            "text": {"type": "plain_text", "text": voice}, "value": voice}}},
        TEXT: {VALUE_ACTION: {"type": "plain_text_input", "value": text}},
        LANGUAGE: {VALUE_ACTION: {"type": "static_select", "selected_option": {
            "text": {"type": "plain_text", "text": language}, "value": language}}},
    }


@dataclass
class SlackHarness:
    fake: FakeSlack
    app: AsyncApp
    services: SlackServices
    logged_errors: ErrorRecords
    trigger_ids: int = field(default=0)

    async def dispatch(self, request: AsyncBoltRequest) -> BoltResponse:
        return await self.app.async_dispatch(request)

    def slash_fields(self, command: str, user: str = "U1", text: str = "", channel: str = "C1") -> dict[str, Any]:
        trigger_id = self.next_trigger_id()
        return {"token": "legacy", "team_id": TEAM_ID, "team_domain": "test", "channel_id": channel,
                "channel_name": "general", "user_id": user, "user_name": user.lower(), "command": command,
                "text": text, "api_app_id": "A1", "is_enterprise_install": "false",
                "response_url": f"{self.fake.base}/response_url/{TEAM_ID}/{self.trigger_ids}/x",
                "trigger_id": trigger_id}

    def slash(self, command: str, **kwargs: Any) -> AsyncBoltRequest:
        return form_request(self.slash_fields(command, **kwargs))

    def next_trigger_id(self) -> str:
        """Slack gives every user action (a command, a shortcut, a form submission) its own trigger id."""
        self.trigger_ids += 1
        return f"13345224609.738474920.{self.trigger_ids:08d}"

    def submission_payload(self, view: dict[str, Any], values: dict[str, Any], user: str = "U1") -> dict[str, Any]:
        """A `view_submission` of `view` (as `views.open` answered it, with its id) and the form `values`."""
        return {"type": "view_submission", "team": {"id": TEAM_ID, "domain": "test"},
                "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID}, "api_app_id": "A1",
                "token": "legacy", "trigger_id": self.next_trigger_id(),
                "view": {"id": "V1", "hash": "h1", **view, "team_id": TEAM_ID, "app_id": "A1", "bot_id": "B1",
                         "state": {"values": values}}}

    def submission(self, view: dict[str, Any], values: dict[str, Any], user: str = "U1") -> AsyncBoltRequest:
        return interactive_request(self.submission_payload(view, values, user))

    async def open_form(self, user: str = "U1") -> dict[str, Any]:
        """`/clone`, and the modal it opened (with the view id Slack gave it)."""
        before = len(self.fake.of("views.open"))
        response = await self.dispatch(self.slash("/clone", user=user))
        assert response.status == 200, response.body
        await self.fake.wait_for(lambda _: len(self.fake.of("views.open")) > before)
        return self.fake.of("views.open")[-1].reply["view"]

    async def command(self, command: str, text: str = "", user: str = "U1",
                      channel: str = "C1") -> dict[str, Any]:
        """A slash command that answers privately: what it posted to its response_url."""
        before = len(self.responses())
        await self.dispatch(self.slash(command, user=user, text=text, channel=channel))
        await self.fake.wait_for(lambda _: len(self.responses()) > before)
        return self.responses()[-1]

    async def open_view(self, command: str, text: str = "", user: str = "U1") -> dict[str, Any]:
        """A slash command that opens a modal: the modal (with the view id Slack gave it)."""
        before = len(self.fake.of("views.open"))
        await self.dispatch(self.slash(command, user=user, text=text))
        await self.fake.wait_for(lambda _: len(self.fake.of("views.open")) > before)
        return self.fake.of("views.open")[-1].reply["view"]

    async def save_voice(self, name: str = "Narrator", user: str = "U1", scope: str = "me",
                         clip: dict[str, Any] | None = None) -> BoltResponse:
        """`/voice save` and the form submitted with consent; waits for the outcome. Each voice gets its own clip
        (a louder or quieter one), unless `clip` is given."""
        loudness = 0.1 + zlib.crc32(f"{user}/{name}".encode()) % 50 / 100
        clip = clip or self.fake.host_file(f"{name}.wav", sine_clip(seconds=3.0, amplitude=loudness),
                                           file_id=f"F0{user}{name}")
        view = await self.open_view("/voice", f"save {name}", user=user)
        response = await self.dispatch(self.submission(view, save_values(name, files=[clip], scope=scope), user=user))
        await self.settle()
        return response

    async def options(self, value: str = "", user: str = "U1") -> list[dict[str, Any]]:
        """The voice picker's options as `user` types `value`."""
        payload = {"type": "block_suggestion", "user": {"id": user, "team_id": TEAM_ID},
                   "team": {"id": TEAM_ID, "domain": "test"}, "api_app_id": "A1", "token": "legacy",
                   "action_id": VOICE_ACTION, "block_id": VOICE, "value": value,
                   "view": {"id": "V9", "type": "modal", "callback_id": "voice_say_modal"}}
        response = await self.dispatch(interactive_request(payload))
        assert response.status == 200, response.body
        return json.loads(response.body)["options"]

    async def shortcut(self, message: dict[str, Any], user: str = "U1", channel: str = "C9") -> dict[str, Any]:
        """"Clone this voice" on `message`: the choice it opened (as `views.open` answered it)."""
        before = len(self.fake.of("views.open"))
        await self.dispatch(interactive_request({
            "type": "message_action", "callback_id": CALLBACK_ID, "trigger_id": self.next_trigger_id(),
            "team": {"id": TEAM_ID, "domain": "test"}, "user": {"id": user, "team_id": TEAM_ID},
            "channel": {"id": channel, "name": "voices"}, "message": message, "message_ts": message["ts"],
            "response_url": f"{self.fake.base}/response_url/shortcut", "api_app_id": "A1", "token": "legacy"}))
        await self.fake.wait_for(lambda _: len(self.fake.of("views.open")) > before)
        return self.fake.of("views.open")[-1].reply["view"]

    async def choose(self, view: dict[str, Any], action_id: str, user: str = "U1") -> dict[str, Any]:
        """Click the button `action_id` in the open modal `view`: the form it turned into (`views.update`;
        `{}` when Slack refused the update)."""
        before = len(self.fake.of("views.update"))
        await self.dispatch(interactive_request({
            "type": "block_actions", "team": {"id": TEAM_ID, "domain": "test"},
            "user": {"id": user, "team_id": TEAM_ID}, "api_app_id": "A1", "token": "legacy",
            "trigger_id": self.next_trigger_id(), "container": {"type": "view", "view_id": view["id"]},
            "view": {**view, "state": {"values": {}}},
            "actions": [{"type": "button", "action_id": action_id, "block_id": "choice",
                         "text": {"type": "plain_text", "text": action_id}, "action_ts": "1.1"}]}))
        await self.fake.wait_for(lambda _: len(self.fake.of("views.update")) > before)
        return (self.fake.of("views.update")[-1].reply or {}).get("view", {})

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until every clone flow and progress edit has ended."""
        assert await self.services.idle(timeout=timeout), "clone flows still running"

    async def health(self, user: str = "UADMIN") -> dict[str, Any]:
        """`/tts-health` as `user`, and what it answered (through the response_url)."""
        before = len(self.responses())
        await self.dispatch(self.slash("/tts-health", user=user))
        await self.fake.wait_for(lambda _: len(self.responses()) > before)
        return self.responses()[-1]

    def responses(self) -> list[dict[str, Any]]:
        """What was posted to response_urls (ephemeral answers to slash commands and shortcuts)."""
        return [c.args for c in self.fake.calls if c.path.startswith("/response_url/")]


SlackFactory = Callable[..., Awaitable[SlackHarness]]
# No waiting between edits or uploads: tests that are not about pacing run at full speed (the fake sets no limits).
UNPACED = Pacing(edit_interval_s=0.0, edits=Rate(1000, 1.0), posts=Rate(1000, 1.0), upload_retry_wait_s=0.0,
                 route_deadline_s=20.0)


@asynccontextmanager
async def slack_services(backend: BackendClient | dict[str, BackendClient], settings: CommandSettings,
                         data_dir: Path, **options: Any) -> AsyncIterator[SlackServices]:
    """`SlackServices` as `voicebot slack` builds them: the clone service and the voice library on a SQLite
    database in `data_dir` (the product's `bot.services.voice_library`), closed on exit."""
    settings = settings.model_copy(update={"data_dir": data_dir})
    service = CloneService(backend, settings)
    async with voice_library(service) as library:
        services = SlackServices(service, library, **options)
        try:
            yield services
        finally:
            await services.idle(timeout=10)
            await service.queue.drain(timeout=1)


ServicesFactory = Callable[..., Awaitable[SlackServices]]


@pytest.fixture
async def make_services(tmp_path) -> AsyncIterator[ServicesFactory]:
    """`await make_services(backend, settings, bot_token=...)`: `slack_services` closed when the test ends."""
    async with AsyncExitStack() as stack:
        made = 0

        async def make(backend: BackendClient | dict[str, BackendClient], settings: CommandSettings | None = None,
                       **options: Any) -> SlackServices:
            nonlocal made
            made += 1
            return await stack.enter_async_context(slack_services(
                backend, settings or CommandSettings(cooldown_s=0, _env_file=None), tmp_path / f"data{made}",
                **options))

        yield make


@pytest.fixture
async def slack(logged_errors: ErrorRecords, make_services: ServicesFactory) -> AsyncIterator[SlackFactory]:
    fake = await FakeSlack().start()
    harnesses: list[SlackHarness] = []

    async def make(backend: BackendClient | dict[str, BackendClient], settings: CommandSettings | None = None,
                   *, bot_token: str = BOT_TOKEN, ack_budget_s: float = 5.0,
                   pacing: Pacing = UNPACED) -> SlackHarness:
        services = await make_services(backend, settings, bot_token=bot_token, ack_budget_s=ack_budget_s,
                                       file_origins=fake.file_origins, pacer=Pacer(pacing))
        client = web_client(BOT_TOKEN, fake.api_url)
        harness = SlackHarness(fake, build_app(services, client, signing_secret=SIGNING_SECRET), services,
                               logged_errors)
        harnesses.append(harness)
        return harness

    yield make
    await fake.close()
