"""How things look in Slack: progress lines, the result comment, the health report as Block Kit.

The words come from `commands` (job descriptions, timing and health fields, the consent line); this module only
renders them as mrkdwn. Values are escaped: user text may hold `<!channel>` or `<@U…>` and must not ping anyone.
A failure is shown to users by its `message` only (`user_text`), never its operator `detail`; both pass
`backend.redaction.redact` on the way out, so a secret that slipped into a message is masked here too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from backend.errors import VoicebotError
from backend.redaction import redact
from commands.health import BotHealth, health_fields
from commands.jobs import Job, JobStatus
from commands.timing import CONSENT_LINE, Field, format_seconds, job_timing_fields

FIELDS_PER_SECTION = 10  # Slack's limit for a section block's `fields`
FIELD_CHARS = 2000  # Slack's limit for one field's text

STATUS_EMOJI = {
    JobStatus.QUEUED: ":hourglass_flowing_sand:",
    JobStatus.CLONING: ":dna:",
    JobStatus.GENERATING: ":speaking_head_in_silhouette:",
    JobStatus.UPLOADING: ":outbox_tray:",
    JobStatus.DONE: ":white_check_mark:",
    JobStatus.FAILED: ":x:",
}

MENTION_HELP = (
    "Attach a voice clip (1-30 s of clean speech) to your message and write the text to speak after the mention, "
    "e.g. `@voicebot Good morning, everyone!` with a recording attached. For a language choice or a transcript, "
    "use `/clone`."
)
NO_AUDIO_IN_MESSAGE = "That message has no audio file to clone. Use the shortcut on a message with a voice clip."
UNEXPECTED = "Something went wrong on our side; the admins have the log."


class Problem(Protocol):
    """A Slack problem kept for /tts-health (`bot.slack.services.NotedProblem`)."""

    text: str
    count: int
    at: float


def user_text(error: VoicebotError) -> str:
    """What a user is shown for `error`: its message for users, never the operator detail."""
    return redact(error.message)


def escape(text: str) -> str:
    """Slack's three control characters, so user text renders as text (no mentions, links or broadcasts)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def error_line(error: VoicebotError, emoji: str = ":x:") -> str:
    """A failure as a private Slack message: its message for users, escaped (it may quote what they typed:
    a voice name, a file name)."""
    return f"{emoji} {escape(user_text(error))}"


def progress_text(job: Job, user_id: str) -> str:
    """"⏳ @alice Job J7K2QX: queued, position 2 of 3" and so on."""
    return f"{STATUS_EMOJI[job.status]} <@{user_id}> {escape(redact(job.describe()))}"


def fields_mrkdwn(fields: list[Field]) -> str:
    return "\n".join(f"*{escape(label)}:* {escape(value)}" for label, value in fields)


def result_comment(job: Job, user_id: str, voice: str | None = None) -> str:
    """What is posted with the WAV: who asked (and which saved voice spoke), the timing report of
    `commands.timing`, the consent line."""
    what = f"the voice *{escape(voice)}*" if voice else "your voice clone"
    return f"<@{user_id}> here is {what} (job {job.id}).\n{fields_mrkdwn(job_timing_fields(job))}\n" \
           f"_{CONSENT_LINE}_"


def field_sections(fields: list[Field]) -> list[dict[str, Any]]:
    """Section blocks of two-column fields, at most 10 per section (Slack's limit)."""
    items = [{"type": "mrkdwn", "text": f"*{escape(label)}*\n{escape(value)}"[:FIELD_CHARS]} for label, value in fields]
    return [{"type": "section", "fields": items[i:i + FIELDS_PER_SECTION]}
            for i in range(0, len(items), FIELDS_PER_SECTION)]


def problem_fields(problems: Sequence[Problem], now: float | None = None) -> list[Field]:
    """Recent Slack problems for admins, with the operator detail users were not shown."""
    now = time.time() if now is None else now
    if not problems:
        return [("Slack", "no problems since the bot started")]
    return [("Slack problem", f"{problem.text} ({problem.count}x, last {format_seconds(now - problem.at)} ago)")
            for problem in problems]


def health_title(health: BotHealth) -> str:
    if not all(variant.ok for variant in health.variants):
        return "Voicebot health: a backend has a problem"
    if health.undelivered:
        return "Voicebot health: results wait for an admin (undelivered)"
    return "Voicebot health: all backends ok"


def health_message(health: BotHealth, problems: Sequence[Problem] = ()) -> dict[str, Any]:
    """`text` (notification fallback) and `blocks` for /tts-health (admins only), values redacted."""
    fields = [(label, redact(value)) for label, value in [*health_fields(health), *problem_fields(problems)]]
    title = health_title(health)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": title}}]
    blocks += field_sections(fields)
    return {"text": f"{title}\n{fields_mrkdwn(fields)}", "blocks": blocks}
