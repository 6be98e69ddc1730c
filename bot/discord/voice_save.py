"""Saving a voice on Discord: `/voice save` and "Clone this voice" -> "Save as a voice" both end in `offer_save`.

1. acknowledge privately ("thinking", only the saver sees any of this) within Discord's 3 s window;
2. every check that needs no clip (name, scope, transcript, size, a block, the per-user count, a taken name),
   then the download from Discord's CDN and the intake (`VoiceLibrary.prepare_save`): a failure ends here, with
   its own message, before anyone confirms anything;
3. the consent step: the statement verbatim, what will be saved, and two buttons (`bot.discord.confirm`).
   "I confirm" stores the voice with the statement, the saver and the time; "Cancel" drops it. Unanswered, the
   save expires with the form (15 minutes).
"""

from __future__ import annotations

import discord
import structlog

from backend.errors import VoicebotError
from bot.discord.calls import CALL_FAILURES, describe_failure, within
from bot.discord.confirm import Confirm
from bot.discord.errors import report
from bot.discord.identity import member_of
from bot.discord.voice_text import scope_label
from commands.storage.voices import Scope
from commands.voice_library import PENDING_TTL_S, PendingSave, VoiceLibrary
from commands.voice_names import MAX_NAME_CHARS

log = structlog.get_logger(__name__)

MODAL_MAX_CHARS = 4000


def consent_text(pending: PendingSave) -> str:
    where = scope_label(pending.scope)
    transcript = " with its transcript" if pending.transcript else ""
    return (f"**Save “{discord.utils.escape_markdown(pending.name)}” as {where}** "
            f"({pending.seconds:.1f} s reference clip{transcript})\n\n"
            f"Before the voice is saved, please confirm:\n> {pending.statement}\n\n"
            "Your confirmation, your user id and the time are stored with the voice. This form expires in 15 minutes.")


async def offer_save(interaction: discord.Interaction, library: VoiceLibrary, *, name: str, scope: str,
                     reference: discord.Attachment, transcript: str | None) -> None:
    """Check, download and normalise the clip, then ask for consent; every answer is private. Never raises."""
    client = interaction.client
    timing = client.timing  # type: ignore[attr-defined]
    try:
        await within(timing.call_s, interaction.response.defer(ephemeral=True, thinking=True))
    except CALL_FAILURES as exc:
        log.warning("discord.defer_failed", reason=describe_failure(exc), user_id=interaction.user.id)
        return
    member = member_of(interaction)
    try:
        client.cdn.check(reference.url)  # type: ignore[attr-defined]
        await library.check_save(member, name, scope, transcript, clip_size=reference.size)
        clip = await client.cdn.download(  # type: ignore[attr-defined]
            reference.url, library.settings.audio_limits.max_bytes)
        pending = await library.prepare_save(member, name, scope, clip, reference.filename, transcript)
    except VoicebotError as exc:
        await _show(interaction, exc.message)
        return
    except Exception as exc:
        await report(interaction, exc)
        return

    async def confirmed(answer: discord.Interaction) -> str:
        voice = await library.confirm_save(pending.id, member_of(answer))
        return (f"Saved “{discord.utils.escape_markdown(voice.name)}” as {scope_label(voice.scope)}. "
                f"Use it with `/say voice:{voice.name}`.")

    async def cancelled(answer: discord.Interaction) -> str:
        library.cancel_save(pending.id, member_of(answer))
        return "Cancelled: nothing was saved."

    question = consent_text(pending)
    view = Confirm(interaction.user.id, question, yes="I confirm: save the voice", no="Cancel", on_yes=confirmed,
                   on_no=cancelled, timeout_s=PENDING_TTL_S)
    await _show(interaction, question, view)


async def _show(interaction: discord.Interaction, text: str, view: discord.ui.View | None = None) -> None:
    """Replace the private "thinking" placeholder with `text` (and buttons)."""
    timing = interaction.client.timing  # type: ignore[attr-defined]
    try:
        await within(timing.call_s, interaction.edit_original_response(
            content=text, view=view, allowed_mentions=discord.AllowedMentions.none()))
    except CALL_FAILURES as exc:
        log.warning("discord.save_answer_not_shown", reason=describe_failure(exc), text=text)


class SaveVoiceModal(discord.ui.Modal, title="Save as a voice"):
    """What "Clone this voice" -> "Save as ..." asks for: the name and, optionally, what the clip says."""

    def __init__(self, library: VoiceLibrary, reference: discord.Attachment, scope: Scope) -> None:
        super().__init__(timeout=PENDING_TTL_S)
        self.library = library
        self.reference = reference
        self.scope = scope
        max_chars = min(library.settings.max_transcript_chars, MODAL_MAX_CHARS)
        self.name = discord.ui.TextInput(max_length=MAX_NAME_CHARS * 2)  # longer ones are told the rule
        self.transcript = discord.ui.TextInput(style=discord.TextStyle.paragraph, max_length=max_chars,
                                               required=False)
        self.add_item(discord.ui.Label(text="Voice name", description=f"Up to {MAX_NAME_CHARS} characters: letters, "
                                       "digits, spaces and - _ . '", component=self.name))
        self.add_item(discord.ui.Label(text="Transcript of the clip (optional)",
                                       description="What is said in the clip; makes the voice closer",
                                       component=self.transcript))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await offer_save(interaction, self.library, name=self.name.value, scope=self.scope,
                         reference=self.reference, transcript=self.transcript.value or None)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        await report(interaction, error)
