"""Slack's own failures turned into a message for the user and a detail for the operator.

Slack answers `{"ok": false, "error": "missing_scope", "needed": "files:write"}` when the app was installed
without a scope. The user can do nothing about a scope or a token, so their message says what failed and that
an admin can see why; the scope, the setting and the fix go into `detail`, which reaches only the log and
`/tts-health` (see `SlackServices.note`). Private file URLs fetched without a valid bot token (or without
`files:read`) answer an HTML sign-in page with status 200, not an error (`bot.slack.files`). Users never read
slack_sdk's own text ("Failed to upload a file (status: 500, body: …)"): it goes into `detail`. `transient` says
which failures are worth trying again (`bot.slack.delivery`).
"""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError, SlackRequestError

from backend.errors import VoicebotError

ASK_ADMIN = "An admin can see the cause with /tts-health."
REINSTALL = "add it under OAuth & Permissions (or in the app manifest) and reinstall the app"
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"})
# Slack's documented "try again later" errors (besides HTTP 429 and 5xx)
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout"})


class SlackProblem(VoicebotError):
    """Slack refused a call or a download; `message` is for the user, `detail` for the operator."""

    code = "slack_error"


def transient(exc: BaseException) -> bool:
    """Whether trying the same thing again may work: a rate limit, a server error, an upload POST that Slack's
    file host did not accept (`files_upload_v2` raises `SlackRequestError` for it), a lost connection or a
    deadline. A missing scope, a channel that refuses the bot or a rejected token are not."""
    if isinstance(exc, SlackApiError):
        status = getattr(exc.response, "status_code", 200)
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        return status == 429 or status >= 500 or data.get("error") in TRANSIENT_ERRORS
    return isinstance(exc, (SlackRequestError, aiohttp.ClientError, TimeoutError))


def explain(exc: BaseException, action: str) -> SlackProblem:
    """A `SlackProblem` for a failed Web API call, upload or connection; `action` completes "Voicebot could not
    ...". The library's own text (status codes, response bodies) goes into `detail` only."""
    if not isinstance(exc, SlackApiError) or (transient(exc) and not _is_rate_limit(exc)):
        return SlackProblem(f"Voicebot could not {action}: Slack did not answer properly. Try again in a minute.",
                            code="slack_unreachable", detail=f"{type(exc).__name__}: {exc}")
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    error = str(data.get("error") or "unknown_error")
    if error == "missing_scope":
        scope = str(data.get("needed") or "?")
        return SlackProblem(f"Voicebot could not {action}: the Slack app is missing a permission. {ASK_ADMIN}",
                            code="missing_scope", detail=f"the Slack app lacks the {scope} scope: {REINSTALL}")
    if error in ("not_in_channel", "channel_not_found"):
        return SlackProblem(
            f"Voicebot could not {action}: it is not a member of this channel. "
            "Add it with `/invite @voicebot` and try again.", code=error)
    if error in AUTH_ERRORS:
        return SlackProblem(
            f"Voicebot could not {action}: Slack does not accept its sign-in right now. {ASK_ADMIN}",
            code="slack_auth",
            detail=f"Slack answered {error}: set SLACK_BOT_TOKEN to the app's current xoxb- token")
    if error == "ratelimited":
        return SlackProblem(f"Voicebot could not {action}: Slack is rate-limiting it. Try again in a minute.",
                            code=error)
    if error == "expired_trigger_id":
        return SlackProblem("The form could not open in time (Slack allows 3 s). Run the command again.", code=error)
    return SlackProblem(f"Voicebot could not {action}: Slack refused. {ASK_ADMIN}", code=error,
                        detail=f"Slack answered {error}")


def _is_rate_limit(exc: SlackApiError) -> bool:
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    return exc.response.status_code == 429 or data.get("error") == "ratelimited"
