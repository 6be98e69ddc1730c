"""Slack's own failures turned into messages a user can act on.

Slack answers `{"ok": false, "error": "missing_scope", "needed": "files:write"}` when the app was installed
without a scope; the message names that scope so an admin knows what to add. Private file URLs fetched without
a valid bot token (or without `files:read`) answer an HTML sign-in page with status 200, not an error.
"""

from __future__ import annotations

from slack_sdk.errors import SlackApiError, SlackClientError

from backend.errors import VoicebotError

REINSTALL = "A workspace admin must add it under OAuth & Permissions (or in the app manifest) and reinstall the app."


class SlackProblem(VoicebotError):
    """Slack refused a call or a download; `message` says what to fix."""

    code = "slack_error"


def missing_scope_message(scope: str, action: str) -> str:
    return f"Voicebot could not {action}: the Slack app lacks the `{scope}` scope. {REINSTALL}"


def explain(exc: SlackClientError, action: str) -> SlackProblem:
    """A `SlackProblem` for a failed Web API call; `action` completes "Voicebot could not ..."."""
    if not isinstance(exc, SlackApiError):
        return SlackProblem(f"Voicebot could not {action}: Slack did not answer properly ({exc}).",
                            code="slack_unreachable")
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    error = str(data.get("error") or "unknown_error")
    if error == "missing_scope":
        return SlackProblem(missing_scope_message(str(data.get("needed") or "?"), action), code="missing_scope")
    if error in ("not_in_channel", "channel_not_found"):
        return SlackProblem(
            f"Voicebot could not {action}: it is not a member of this channel. "
            "Add it with `/invite @voicebot` and try again.", code=error)
    if error in ("invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"):
        return SlackProblem(
            f"Voicebot could not {action}: its bot token is not valid ({error}). "
            "The operator must set SLACK_BOT_TOKEN to the app's current xoxb- token.", code="slack_auth")
    if error == "ratelimited":
        return SlackProblem(f"Voicebot could not {action}: Slack is rate-limiting it. Try again in a minute.",
                            code=error)
    if error == "expired_trigger_id":
        return SlackProblem("The form could not open in time (Slack allows 3 s). Run the command again.", code=error)
    return SlackProblem(f"Voicebot could not {action}: Slack answered `{error}`.", code=error)
