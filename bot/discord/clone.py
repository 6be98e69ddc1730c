"""`/clone` and the "Clone this voice" message menu: a reference clip and a text in, the cloned speech out.

Both run the shared job flow (`bot.discord.job_flow`): cheap refusals at once, then the download from Discord's
CDN only (`bot.discord.attachments`: size cap, deadline, no redirect off the CDN), the clone job, its progress and
the delivery. With a voice library, the menu first offers a one-off clone or saving the clip as a voice
(`bot.discord.voice_save`), and every clone job is audited when it ends.
"""

# No `from __future__ import annotations`: discord.py reads the option types (Range[str, 1, N] with N from the
# settings) from the callbacks' annotations, which must be evaluated where the callbacks are defined.

from dataclasses import dataclass

import discord
from discord import app_commands

from backend.errors import VoicebotError
from bot.discord.calls import within
from bot.discord.errors import report, send_ephemeral
from bot.discord.identity import caller_is_admin, member_of, place_of
from bot.discord.job_flow import run_job
from bot.discord.progress import JobProgress
from commands.clone import CloneService
from bot.discord.voice_save import SaveVoiceModal
from commands.jobs import Job
from commands.storage.voices import Scope
from commands.voice_library import VoiceLibrary
from commands.voices import autocomplete_languages

CLONE_MENU = "Clone this voice"
# Discord's own caps: string options 6000 characters, modal text inputs 4000.
OPTION_MAX_CHARS, MODAL_MAX_CHARS = 6000, 4000
# What a message attachment must look like to be offered to the commands layer (which sniffs the bytes).
AUDIO_EXTENSIONS = (".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".webm", ".mp4", ".amr")


@dataclass(frozen=True)
class CloneAsk:
    """What the user asked for, whichever entry point they used."""

    reference: discord.Attachment
    text: str
    ref_text: str | None = None
    language: str | None = None
    variant: str | None = None


def is_audio_attachment(attachment: discord.Attachment) -> bool:
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    return (attachment.is_voice_message() or content_type.startswith("audio/")
            or attachment.filename.lower().endswith(AUDIO_EXTENSIONS))


def first_audio(message: discord.Message) -> discord.Attachment | None:
    """The message's first audio attachment (voice messages included)."""
    return next((a for a in message.attachments if is_audio_attachment(a)), None)


async def run_clone(interaction: discord.Interaction, service: CloneService, ask: CloneAsk) -> None:
    """The clone flow for one interaction (slash command or modal submit); never raises."""
    client = interaction.client
    member, admin = member_of(interaction), caller_is_admin(interaction, service.settings)

    async def check() -> None:
        await service.check_request(member.key, ask.text, ask.ref_text, ask.language, ask.variant,
                              reference_size=ask.reference.size, is_admin=admin)
        client.cdn.check(ask.reference.url)  # type: ignore[attr-defined]

    async def submit(progress: JobProgress) -> Job:
        reference = await client.cdn.download(  # type: ignore[attr-defined]
            ask.reference.url, service.settings.audio_limits.max_bytes)
        job = await service.submit(member.key, place_of(interaction), reference, ask.reference.filename, ask.text,
                                   ask.ref_text, ask.language, ask.variant, is_admin=admin,
                                   on_progress=progress.on_job)
        if client.library is not None:  # type: ignore[attr-defined]
            client.library.record_clone(job, member, str(interaction.channel_id))  # type: ignore[attr-defined]
        return job

    await run_job(interaction, check, submit, title="Voice clone", starting="Fetching the reference clip…")


async def complete_language(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=name, value=name) for name in autocomplete_languages(current)]


def clone_command(service: CloneService) -> app_commands.Command:
    """`/clone`; the `variant` option exists only when more than one backend variant is configured."""
    max_chars = min(service.settings.max_text_chars, OPTION_MAX_CHARS)
    Text = app_commands.Range[str, 1, max_chars]
    Transcript = app_commands.Range[str, 1, min(service.settings.max_transcript_chars, OPTION_MAX_CHARS)]
    descriptions = {
        "reference": "A few seconds (1-30 s) of the voice to clone: WAV, MP3, OGG, M4A, FLAC or WebM",
        "text": f"What the cloned voice should say (up to {max_chars} characters)",
        "ref_text": "What is said in the reference clip (optional; makes the clone closer)",
        "language": "Language of the text (default: detect automatically)",
        "variant": "Which backend model variant generates the speech",
    }

    if len(service.variant_names) > 1:
        async def clone(interaction: discord.Interaction, reference: discord.Attachment, text: Text,
                        ref_text: Transcript | None = None, language: str | None = None,
                        variant: str | None = None) -> None:
            await run_clone(interaction, service, CloneAsk(reference, text, ref_text, language, variant))

        clone = app_commands.choices(variant=[app_commands.Choice(name=name, value=name)
                                              for name in service.variant_names])(clone)
    else:
        del descriptions["variant"]

        async def clone(interaction: discord.Interaction, reference: discord.Attachment, text: Text,  # type: ignore[misc]
                        ref_text: Transcript | None = None, language: str | None = None) -> None:
            await run_clone(interaction, service, CloneAsk(reference, text, ref_text, language))

    clone = app_commands.describe(**descriptions)(clone)
    clone = app_commands.autocomplete(language=complete_language)(clone)
    return app_commands.Command(name="clone", description="Speak a text in the voice of a reference clip",
                                callback=clone)


class CloneVoiceModal(discord.ui.Modal, title=CLONE_MENU):
    """What the message menu asks for: the text, and optionally what the clip says."""

    def __init__(self, service: CloneService, reference: discord.Attachment) -> None:
        super().__init__(timeout=15 * 60)
        self.service = service
        self.reference = reference
        self.text = discord.ui.TextInput(style=discord.TextStyle.paragraph,
                                         max_length=min(service.settings.max_text_chars, MODAL_MAX_CHARS))
        self.ref_text = discord.ui.TextInput(style=discord.TextStyle.paragraph, required=False,
                                             max_length=min(service.settings.max_transcript_chars, MODAL_MAX_CHARS))
        self.add_item(discord.ui.Label(text="Text to speak", component=self.text))
        self.add_item(discord.ui.Label(text="Transcript of the clip (optional)",
                                       description="What is said in the voice message; makes the clone closer",
                                       component=self.ref_text))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await run_clone(interaction, self.service,
                        CloneAsk(self.reference, self.text.value, self.ref_text.value or None))

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        await report(interaction, error)


CHOICE = ("What should the bot do with this voice?\n"
          "**Clone once**: type a text and get it spoken in this voice.\n"
          "**Save as a voice**: keep it under a name and use it any time with `/say` (you confirm consent next).")


async def open_clone_modal(interaction: discord.Interaction, service: CloneService,
                           reference: discord.Attachment) -> None:
    """The one-off clone's form, unless the user could not start a job now anyway (cooldown, jobs in flight)."""
    try:  # refuse before the user types a text that could not be used anyway
        await service.queue.check_admission(member_of(interaction).key,
                                            is_admin=caller_is_admin(interaction, service.settings))
    except VoicebotError as exc:
        await send_ephemeral(interaction, exc.message)
        return
    await within(interaction.client.timing.call_s,  # type: ignore[attr-defined]
                 interaction.response.send_modal(CloneVoiceModal(service, reference)))


class CloneOrSave(discord.ui.View):
    """The menu's private choice: a one-off clone, or saving the clip as the user's or the server's voice."""

    def __init__(self, service: CloneService, library: VoiceLibrary, reference: discord.Attachment,
                 in_server: bool) -> None:
        super().__init__(timeout=15 * 60)
        self.service = service
        self.library = library
        self.reference = reference
        if not in_server:
            self.remove_item(self.save_server)

    @discord.ui.button(label="Clone once", style=discord.ButtonStyle.primary)
    async def clone_once(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await open_clone_modal(interaction, self.service, self.reference)

    @discord.ui.button(label="Save as my voice", style=discord.ButtonStyle.secondary)
    async def save_mine(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._save(interaction, "me")

    @discord.ui.button(label="Save for this server", style=discord.ButtonStyle.secondary)
    async def save_server(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await self._save(interaction, "server")

    async def _save(self, interaction: discord.Interaction, scope: Scope) -> None:
        await within(interaction.client.timing.call_s,  # type: ignore[attr-defined]
                     interaction.response.send_modal(SaveVoiceModal(self.library, self.reference, scope)))

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item) -> None:
        await report(interaction, error)


def clone_menu(service: CloneService, library: VoiceLibrary | None = None) -> app_commands.ContextMenu:
    """Message menu "Clone this voice": the message's first audio attachment becomes the reference clip, for a
    one-off clone or (with a voice library) a saved voice."""

    async def clone_this_voice(interaction: discord.Interaction, message: discord.Message) -> None:
        reference = first_audio(message)
        if reference is None:
            await send_ephemeral(interaction, "That message has no audio attachment. Use “Clone this voice” on a "
                                              "voice message or a message with an audio file.")
            return
        try:
            interaction.client.cdn.check(reference.url)  # type: ignore[attr-defined]
        except VoicebotError as exc:
            await send_ephemeral(interaction, exc.message)
            return
        if library is None:
            await open_clone_modal(interaction, service, reference)
            return
        view = CloneOrSave(service, library, reference, in_server=interaction.guild_id is not None)
        await within(interaction.client.timing.call_s,  # type: ignore[attr-defined]
                     interaction.response.send_message(CHOICE, view=view, ephemeral=True))

    return app_commands.ContextMenu(name=CLONE_MENU, callback=clone_this_voice)
