"""Slack's own failures turned into a message for the user and a detail for the operator.

Slack answers `{"ok": false, "error": "missing_scope", "needed": "files:write"}` when the app was installed
without a scope. The user can do nothing about a scope or a token, so their message says what failed and that
an admin can see why; the scope, the setting and the fix go into `detail`, which reaches only the log and
`/tts-health` (see `SlackServices.note`). Private file URLs fetched without a valid bot token (or without
`files:read`) answer an HTML sign-in page with status 200, not an error (`bot.slack.files`).
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError, SlackClientError

from backend.errors import VoicebotError

ASK_ADMIN = "An admin can see the cause with /tts-health."
REINSTALL = "add it under OAuth & Permissions (or in the app manifest) and reinstall the app"
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"})


class SlackProblem(VoicebotError):
    """Slack refused a call or a download; `message` is for the user, `detail` for the operator."""

    code = "slack_error"


def explain(exc: SlackClientError, action: str) -> SlackProblem:
    """A `SlackProblem` for a failed Web API call; `action` completes "Voicebot could not ..."."""
    if not isinstance(exc, SlackApiError):
        return SlackProblem(f"Voicebot could not {action}: Slack did not answer. Try again in a minute.",
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
    return SlackProblem(f"Voicebot could not {action}: Slack refused ({error}).", code=error,
                        detail=f"Slack answered {error}")
