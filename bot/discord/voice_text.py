"""How voices, forget-me reports and audit entries read in Discord: Markdown escaped (names and texts are user
input), users as mentions (sent with mentions disabled), times as Discord timestamps (each reader's time zone),
and every list cut to what one message holds."""

from __future__ import annotations

from datetime import datetime

import discord

from commands.listing import fit_lines
from commands.storage.audit import AuditEntry
from commands.storage.voices import Member, Scope, Voice
from commands.timing import excerpt, format_seconds

DESCRIPTION_MAX_CHARS = 4096  # an embed's description
FIELD_MAX_CHARS = 1024


def scope_label(scope: Scope) -> str:
    return "your own voice" if scope == "me" else "a voice of this server"


def mention(user_id: str) -> str:
    return f"<@{user_id}>" if user_id.isdigit() else discord.utils.escape_markdown(user_id)


def when(at: datetime) -> str:
    return discord.utils.format_dt(at, "f")


def voice_line(voice: Voice, member: Member) -> str:
    name = f"**{discord.utils.escape_markdown(voice.name)}**"
    if voice.scope == "me":
        return f"{name} · yours · used {voice.uses}×"
    owner = "yours" if voice.owner == member else f"by {mention(voice.owner.user_id)}"
    return f"{name} · server voice {owner} · used {voice.uses}×"


def voices_embed(voices: list[Voice], member: Member) -> discord.Embed:
    if not voices:
        return discord.Embed(title="Voices", description="No saved voices yet. Save one with `/voice save`, or use "
                             "“Clone this voice” on a voice message.")
    lines = [voice_line(voice, member) for voice in voices]
    return discord.Embed(title="Voices you can use", description=fit_lines(lines, DESCRIPTION_MAX_CHARS))


def choice_label(voice: Voice, member: Member) -> str:
    """How an autocomplete choice says whose a voice is."""
    if voice.scope == "server":
        return "server"
    return "yours" if voice.owner == member else "private"


def member_voices_embed(voices: list[Voice], owner_id: str) -> discord.Embed:
    """An admin's view of one member's voices in this server, private ones included (to find one to take down)."""
    if not voices:
        return discord.Embed(title="Voices", description=f"{mention(owner_id)} has no saved voices in this server.")
    lines = [f"**{discord.utils.escape_markdown(voice.name)}** · "
             f"{'private' if voice.scope == 'me' else 'server voice'} · used {voice.uses}×" for voice in voices]
    heading = f"Saved by {mention(owner_id)} in this server:\n"
    embed = discord.Embed(title="Voices of a member",
                          description=heading + fit_lines(lines, DESCRIPTION_MAX_CHARS - len(heading)))
    embed.set_footer(text="/voice delete name owner takes one down")
    return embed


def voice_embed(voice: Voice) -> discord.Embed:
    embed = discord.Embed(title=f"Voice “{discord.utils.escape_markdown(voice.name)}”")
    embed.add_field(name="Scope", value="private (only its owner)" if voice.scope == "me" else "this server")
    embed.add_field(name="Owner", value=mention(voice.owner.user_id))
    embed.add_field(name="Saved", value=when(voice.created_at))
    embed.add_field(name="Used", value=f"{voice.uses}×" + (f", last {when(voice.last_used_at)}"
                                                             if voice.last_used_at else ""))
    embed.add_field(name="Transcript", value=discord.utils.escape_markdown(excerpt(voice.transcript, 200))
                    if voice.transcript else "none", inline=False)
    consent = voice.consent
    embed.add_field(name="Consent", value=(f"confirmed by {mention(consent.confirmed_by.split(':', 1)[-1])} "
                                           f"{when(consent.confirmed_at)}:\n> {consent.statement}")[:FIELD_MAX_CHARS],
                    inline=False)
    embed.set_footer(text=f"Reference clip SHA-256 {voice.clip_sha256[:16]}…")
    return embed


def activity_line(entry: AuditEntry) -> str:
    what = entry.kind if entry.voice_name is None else \
        f"{entry.kind} “{discord.utils.escape_markdown(entry.voice_name)}”"
    text = (f"“{discord.utils.escape_markdown(excerpt(entry.text, 60))}”" if entry.text is not None
            else f"text SHA-256 {entry.text_sha256[:12]}…")
    audio = f" · {format_seconds(entry.audio_seconds)}" if entry.audio_seconds else ""
    channel = f" · <#{entry.channel_id}>" if entry.channel_id.isdigit() else ""
    return (f"{when(entry.at)} · {mention(entry.user_id)} · {what} · {entry.outcome}{audio}{channel} · "
            f"job {entry.job_id} · {text}")


def activity_embed(entries: list[AuditEntry], retention_days: int) -> discord.Embed:
    if not entries:
        return discord.Embed(title="Recent voice activity", description="Nothing in the last "
                             f"{retention_days} days (older activity is deleted).")
    lines = [activity_line(entry) for entry in entries]
    embed = discord.Embed(title="Recent voice activity", description=fit_lines(lines, DESCRIPTION_MAX_CHARS))
    embed.set_footer(text=f"Newest first · kept {retention_days} days")
    return embed
