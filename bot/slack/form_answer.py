"""Answering a form submission within Slack's 3 s: a refusal goes onto the form, anything else closes it.

Every form whose work can be refused (a bad clip, a taken name, a cooldown, a voice that does not exist) starts
that work at once and waits up to `services.ack_budget_s` for it: refused by then, the reason is shown on the
field it concerns and the form stays open; otherwise the form closes (or shows its result) and the outcome
arrives as a private message. The listener acknowledges and then carries on (an `AsyncApp` in a long-running
process; lazy listeners are for FaaS), so there is one code path and nothing is validated twice.

A form that closed is remembered by its view id, so a replayed submission of it is acknowledged and ignored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from slack_bolt.async_app import AsyncAck

from backend.errors import VoicebotError
from bot.slack.messages import UNEXPECTED, error_line, user_text
from bot.slack.replies import Replier
from bot.slack.services import SlackServices

log = structlog.get_logger(__name__)
T = TypeVar("T")


def _view_key(view: dict[str, Any]) -> str | None:
    return f"view:{view['id']}" if view.get("id") else None  # Slack gives every view an id


async def ignore_replay(services: SlackServices, ack: AsyncAck, view: dict[str, Any]) -> bool:
    """True (and acknowledged) when this form was already submitted and closed."""
    key = _view_key(view)
    if key is not None and services.seen(key):
        log.info("slack.view_replay_ignored", view_id=view.get("id"))
        await ack()
        return True
    return False


def remember_closed(services: SlackServices, view: dict[str, Any]) -> None:
    if (key := _view_key(view)) is not None:
        services.first_time(key)


async def refused_on_form(services: SlackServices, ack: AsyncAck, work: asyncio.Task[Any],
                          block_for: Callable[[VoicebotError], str], *, user: str) -> bool:
    """Wait up to the budget for `work`; when it was refused, show why on the field `block_for` names (the form
    stays open) and return True. False: it succeeded or still runs, and the caller answers the form."""
    await asyncio.wait({work}, timeout=services.ack_budget_s)
    refused = work.exception() if work.done() and not work.cancelled() else None
    if refused is None:
        return False
    if isinstance(refused, VoicebotError):
        services.note(refused, user=user)
        await ack(response_action="errors", errors={block_for(refused): user_text(refused)})
        return True
    log.error("slack.form_work_failed", user=user, exc_info=refused)
    await ack(response_action="errors", errors={block_for(VoicebotError(UNEXPECTED)): UNEXPECTED})
    return True


async def tell_outcome(services: SlackServices, work: asyncio.Task[T], reply: Replier,
                       done_text: Callable[[T], str]) -> None:
    """The outcome of `work` whose form has closed, told privately: `done_text(result)`, or why it failed."""
    try:
        result = await work
    except VoicebotError as exc:
        services.note(exc, user=reply.user)
        await reply.ephemeral(error_line(exc))
        return
    except Exception:
        log.exception("slack.form_work_failed", user=reply.user)
        await reply.ephemeral(f":x: {UNEXPECTED}")
        return
    await reply.ephemeral(done_text(result))
