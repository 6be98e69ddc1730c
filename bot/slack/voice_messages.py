"""How the voice library reads in Slack: voice lists, a voice's details with its consent, the forget-me report,
recent activity, and `/voice` help.

User input (voice names, transcripts, spoken texts) is escaped so it renders as text; users appear as mentions
(answers are ephemeral: nobody is notified) and times as Slack date tokens, shown in each reader's time zone.
Long lists are cut to what one message holds, saying how many were left out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.slack.blocks import SECTION_CHARS, context, section
from bot.slack.messages import escape
from commands.listing import fit_lines
from commands.storage.audit import AuditEntry
from commands.storage.voices import Member, Voice
from commands.timing import excerpt, format_seconds
from commands.forgetting import ForgetMeReport

LIST_CHARS = SECTION_CHARS - 100  # a section's limit, less room for its title

VOICE_HELP = """*Voices* — save a voice once, then let it speak by name.
• `/voice save [name]` — save a voice from a clip (a form asks for the clip and your consent)
• `/say` or `/say <voice>: <text>` — speak a text with a saved voice
• `/voice list` — the voices you can use: yours, then this workspace's
• `/voice info <name>` — who saved it, when, and the consent they gave
• `/voice rename [name]` · `/voice delete <name>` — your voices (admins: any workspace voice)
• `/voice forget-me` — delete every voice, clip and record the bot keeps about you
• `/voice api-key` — a key for the OpenAI-compatible API (shown once, only to you) · `/voice api-key revoke`
• Admins: `/voice block @user` · `/voice unblock @user` · `/voice activity [@user]`
• Admins: `/voice list @user` — every voice they saved here · `/voice delete <name> @user` — take one down
The *Clone this voice* shortcut on a message with a voice clip can save it as a voice, too."""


def when(at: datetime) -> str:
    """A Slack date token: the reader's own time zone, with a UTC fallback for clients that cannot render it."""
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def voice_line(voice: Voice, member: Member) -> str:
    name = f"*{escape(voice.name)}*"
    if voice.scope == "me":
        return f"• {name} · yours · used {voice.uses}×"
    owner = "yours" if voice.owner == member else f"by {mention(voice.owner.user_id)}"
    return f"• {name} · workspace voice {owner} · used {voice.uses}×"


def voices_message(voices: list[Voice], member: Member) -> dict[str, Any]:
    if not voices:
        text = ("No saved voices yet. Save one with `/voice save`, or use *Clone this voice* on a message with a "
                "voice clip.")
        return {"text": text}
    body = fit_lines([voice_line(voice, member) for voice in voices], LIST_CHARS)
    return {"text": f"Voices you can use:\n{body}", "blocks": [section(f"*Voices you can use*\n{body}")]}


def member_voices_message(voices: list[Voice], owner_id: str) -> dict[str, Any]:
    """An admin's view of one member's voices in this workspace, private ones included (to find one to take
    down)."""
    if not voices:
        return {"text": f"{mention(owner_id)} has no saved voices in this workspace."}
    lines = [f"• *{escape(voice.name)}* · {'private' if voice.scope == 'me' else 'workspace voice'} · "
             f"used {voice.uses}×" for voice in voices]
    heading = f"Voices {mention(owner_id)} saved in this workspace:"
    body = fit_lines(lines, LIST_CHARS)
    return {"text": f"{heading}\n{body}",
            "blocks": [section(f"{heading}\n{body}"),
                       context(f"`/voice delete <name> {mention(owner_id)}` takes one down.")]}


def voice_message(voice: Voice) -> dict[str, Any]:
    """A voice's details: who may use it, who saved it and when, how often it spoke, and the consent given."""
    consent = voice.consent
    by = consent.confirmed_by.split(":", 1)[-1]
    lines = [
        f"*Voice “{escape(voice.name)}”*",
        f"*Who may use it:* {'only its owner' if voice.scope == 'me' else 'everyone in this workspace'}",
        f"*Owner:* {mention(voice.owner.user_id)} · *saved* {when(voice.created_at)}",
        f"*Used:* {voice.uses}×" + (f", last {when(voice.last_used_at)}" if voice.last_used_at else ""),
        f"*Transcript:* {escape(excerpt(voice.transcript, 200)) if voice.transcript else 'none'}",
    ]
    statement = escape(consent.statement).replace("\n", "\n>")
    consent_text = f"*Consent* confirmed by {mention(by)} {when(consent.confirmed_at)}:\n>{statement}"
    text = "\n".join(lines)
    return {"text": f"{text}\n{consent_text}",
            "blocks": [section(text), section(consent_text),
                       context(f"Reference clip SHA-256 `{voice.clip_sha256[:16]}…`")]}


def forget_message(report: ForgetMeReport) -> str:
    return "*Done: Voicebot forgot you.*\n" + escape(report.summary())


def activity_line(entry: AuditEntry) -> str:
    what = entry.kind if entry.voice_name is None else f"{entry.kind} “{escape(entry.voice_name)}”"
    text = (f"“{escape(excerpt(entry.text, 60))}”" if entry.text is not None
            else f"text SHA-256 `{entry.text_sha256[:12]}…`")
    audio = f" · {format_seconds(entry.audio_seconds)}" if entry.audio_seconds else ""
    channel = f" · <#{entry.channel_id}>" if entry.channel_id else ""
    return (f"• {when(entry.at)} · {mention(entry.user_id)} · {what} · {escape(entry.outcome)}{audio}{channel} · "
            f"job {entry.job_id} · {text}")


def activity_message(entries: list[AuditEntry], retention_days: int) -> dict[str, Any]:
    if not entries:
        return {"text": f"No voice activity in this workspace in the last {retention_days} days "
                        "(older activity is deleted)."}
    body = fit_lines([activity_line(entry) for entry in entries], LIST_CHARS)
    return {"text": f"Recent voice activity:\n{body}",
            "blocks": [section(f"*Recent voice activity*\n{body}"),
                       context(f"Newest first · kept {retention_days} days")]}
