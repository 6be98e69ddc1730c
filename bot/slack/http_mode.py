"""HTTP mode's endpoint: Slack's signature is checked on the raw bytes before anything parses them.

Bolt's own aiohttp server builds its request object, and with it parses the body as JSON or a form, before
its middleware verifies the signature: a malformed unsigned POST from anyone became an HTTP 500 and an ERROR
traceback. Here the order is size (at most `MAX_BODY_BYTES`, aiohttp answers 413 past it), signature (401),
parsing (400), and only then Bolt, which checks the signature again and dispatches. Refusals are one warning
line each, never a traceback. Replays of a correctly signed request are Bolt's middleware's concern
(`bot.slack.app.once_per_request`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import structlog
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_sdk.signature import SignatureVerifier

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 1 << 20  # Slack's payloads are a few KiB; a modal's state is bounded by its inputs
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


def is_signed(verifier: SignatureVerifier, body: str | None, headers: Mapping[str, str]) -> bool:
    """Slack's v0 signature over `body`, with a timestamp inside Slack's 5-minute window. What the verifier
    itself would raise on is refused here: a body that is not UTF-8 (None; Slack sends only UTF-8), a
    non-numeric timestamp, a signature that is not v0 hex."""
    timestamp = headers.get("X-Slack-Request-Timestamp") or ""
    signature = headers.get("X-Slack-Signature") or ""
    if body is None or not _TIMESTAMP.fullmatch(timestamp) or not _SIGNATURE.fullmatch(signature):
        return False
    return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)


def _utf8(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def web_app(app: AsyncApp, path: str, signing_secret: str) -> web.Application:
    """An aiohttp application serving `app` on POST `path`."""
    verifier = SignatureVerifier(signing_secret)

    async def slack_request(request: web.Request) -> web.Response:
        text = _utf8(await request.read())
        if not is_signed(verifier, text, request.headers):
            log.warning("slack.http_refused", reason="bad or missing signature", remote=request.remote)
            return web.Response(status=401, text="invalid request signature")
        assert text is not None
        try:
            if not isinstance(parse_body(text, request.content_type), dict):
                raise ValueError("not an object")
            bolt_request = AsyncBoltRequest(body=text, query=request.query_string, headers=request.headers)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:  # JSONDecodeError is a ValueError
            log.warning("slack.http_refused", reason="malformed body", error=type(exc).__name__,
                        remote=request.remote)
            return web.Response(status=400, text="malformed request body")
        return await to_aiohttp_response(await app.async_dispatch(bolt_request))

    web_application = web.Application(client_max_size=MAX_BODY_BYTES)
    web_application.router.add_post(path, slack_request)
    return web_application
