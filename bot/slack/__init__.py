"""The Slack adapter: slack-bolt's `AsyncApp` (asyncio, like `commands`) over the platform-neutral commands layer.

    runner.py       `voicebot slack`: settings, storage + services, Socket Mode or HTTP transport, graceful shutdown
    http_mode.py    HTTP mode's endpoint: the signature is checked before the body is parsed
    app.py          the AsyncApp with every listener registered, each request handled once
    listeners/      commands (/clone, /voice, /say, /tts-check, /tts-health), views (form submissions),
                    actions (buttons), options (the voice picker), shortcuts, events (app_mention)
    clone_flow.py   one clone job as seen from Slack: clip download, submit, progress message, delivery
    say_flow.py     the same for a saved voice (`/say`): the clip comes from the voice library
    progress.py     the job's public progress message: coalesced edits, always a final state
    delivery.py     the WAV to the thread, else a direct message, else kept for the admins (never dropped)
    pacing.py       budgets below Slack's rate tiers (edits per workspace, posts per channel)
    web_client.py   the Slack clients: a deadline per request, slack_sdk's retry handlers (429, 5xx, resets)
    files.py        finding the clip, looking it up by id, downloading it from Slack's file host only
    clip_fetch.py   a user's clip: checked by its stated size, then downloaded within the limit
    blocks.py       Block Kit pieces within Slack's limits    form_answer.py  a refusal on the form, else close
    modals.py       the clone form and reading it back        voice_forms.py  save (consent), say, rename, choice
    check_form.py   /tts-check's form and verdict             members.py      who asks; admin checks (users.info)
    messages.py     progress, result and health text          voice_messages.py  voices, consent, activity, help
    replies.py      private answers to one user (DM as last resort)   services.py   what the listeners share
    slack_errors.py Slack failures -> user message + operator detail; which ones are worth a retry
    settings.py     SLACK_* settings                          manifest.yaml the Slack app's manifest
"""

from __future__ import annotations


def run_slack() -> None:
    """Entry point of `voicebot slack` (imports slack-bolt only when called)."""
    from bot.slack.runner import run_slack as run

    run()


__all__ = ["run_slack"]
