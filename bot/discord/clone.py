"""`/clone` and the "Clone this voice" message menu: a Discord interaction in, a clone job, the WAV posted back.

Both entry points end in `run_clone`:

1. checks that need no audio (text, transcript, language, variant, reference size, cooldown, jobs in flight,
   an attachment URL on Discord's CDN) answer at once, ephemerally, before anything is downloaded;
2. defer ("thinking") inside Discord's 3 s window, download the reference clip from Discord's CDN only
   (`bot.discord.attachments`: size cap, deadline, no redirect off the CDN), submit the clone job;
3. the progress message follows the job (queued #n -> cloning the voice -> generating -> uploading), moving to a
   message the bot owns before the interaction token expires (`bot.discord.progress`);
4. the WAV (OGG/Opus when over a route's upload limit) is posted with the timing embed and the consent line:
   follow-up, else a channel message mentioning the user, else a DM; when none takes it, it is kept on disk for
   the admins and the user gets the job id (`deliver`).

Any failure after step 1 is told privately (ephemeral while the token lives, else DM) and the public progress
message goes away.
"""

# No `from __future__ import annotations`: discord.py reads the option types (Range[str, 1, N] with N from the
# settings) from the callbacks' annotations, which must be evaluated where the callbacks are defined.

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
import structlog
from discord import app_commands

from backend.errors import VoicebotError
from backend.schema import CloneResult
from bot.discord.calls import CALL_FAILURES, describe_failure, within
from bot.discord.errors import UNEXPECTED, report, send_ephemeral
from bot.discord.files import ResultFile, fit_result
from bot.discord.progress import JobProgress
from bot.discord.routes import NoRouteLeft, Route, Routes
from commands.clone import CloneService
from commands.health import is_admin
from commands.jobs import Job
from commands.timing import CONSENT_LINE, job_timing_fields, result_filename
from commands.voices import autocomplete_languages

if TYPE_CHECKING:
    from bot.discord.client import VoicebotClient

log = structlog.get_logger(__name__)

CLONE_MENU = "Clone this voice"
# Discord's own caps: string options 6000 characters, modal text inputs 4000, embed field values 1024.
OPTION_MAX_CHARS, MODAL_MAX_CHARS, FIELD_MAX_CHARS = 6000, 4000, 1024
# What a message attachment must look like to be offered to the commands layer (which sniffs the bytes).
AUDIO_EXTENSIONS = (".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".m4a", ".aac", ".webm", ".mp4", ".amr")


UNDELIVERED = "Discord did not let the bot post the audio here or send it to you in a direct message."
KEPT = "It is kept for you: ask an admin for it with the job id."


class ResultUndelivered(VoicebotError):
    """No route took the result; the audio is kept in the bot's `UndeliveredStore`."""

    code = "undelivered"


@dataclass(frozen=True)
class CloneAsk:
    """What the user asked for, whichever entry point they used."""

    reference: discord.Attachment
    text: str
    ref_text: str | None = None
    language: str | None = None
    variant: str | None = None


def user_key(user: discord.abc.User) -> str:
    return f"discord:{user.id}"


def place_of(interaction: discord.Interaction) -> str:
    return f"discord:{interaction.guild_id or 'dm'}/{interaction.channel_id}"


def caller_is_admin(interaction: discord.Interaction, service: CloneService) -> bool:
    """Server admins (as Discord reports them in this interaction) and the configured admin ids."""
    return is_admin(user_key(interaction.user), interaction.permissions.administrator, service.settings)


def is_audio_attachment(attachment: discord.Attachment) -> bool:
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    return (attachment.is_voice_message() or content_type.startswith("audio/")
            or attachment.filename.lower().endswith(AUDIO_EXTENSIONS))


def first_audio(message: discord.Message) -> discord.Attachment | None:
    """The message's first audio attachment (voice messages included)."""
    return next((a for a in message.attachments if is_audio_attachment(a)), None)


def result_embed(job: Job) -> discord.Embed:
    embed = discord.Embed(title="Voice clone", colour=discord.Colour.blurple())
    for name, value in job_timing_fields(job):
        if name == "Text":
            value = discord.utils.escape_markdown(value)
        embed.add_field(name=name, value=value[:FIELD_MAX_CHARS] or "-", inline=name != "Text")
    return embed


async def run_clone(interaction: discord.Interaction, service: CloneService, ask: CloneAsk) -> None:
    """The whole clone flow for one interaction (slash command or modal submit); never raises."""
    client: VoicebotClient = interaction.client  # type: ignore[assignment]
    client.track(asyncio.current_task())
    user_id, admin = user_key(interaction.user), caller_is_admin(interaction, service)
    try:
        await service.check_request(user_id, ask.text, ask.ref_text, ask.language, ask.variant,
                              reference_size=ask.reference.size, is_admin=admin)
        client.cdn.check(ask.reference.url)
    except VoicebotError as exc:
        await send_ephemeral(interaction, exc.message)
        return

    routes = Routes(interaction, client.timing)
    progress = JobProgress(routes, client.timing)
    try:
        await progress.start()
    except CALL_FAILURES as exc:  # the 3 s window passed (a stalled event loop) or Discord failed
        log.warning("discord.defer_failed", reason=describe_failure(exc), user_id=user_id)
        return
    job: Job | None = None
    try:
        reference = await client.cdn.download(ask.reference.url, service.settings.audio_limits.max_bytes)
        job = await service.submit(user_id, place_of(interaction), reference, ask.reference.filename, ask.text,
                                   ask.ref_text, ask.language, ask.variant, is_admin=admin,
                                   on_progress=progress.on_job)
        progress.job_id = interaction.extras["job_id"] = job.id
        structlog.contextvars.bind_contextvars(job_id=job.id)
        result = await job.wait()
        async with job.delivering():
            progress.show(job.describe())  # "uploading the audio…", before a transcode can take its time
            route = await deliver(client, routes, job, result)
        await progress.finish(job.describe() + (" — sent to you in a direct message." if route is Route.DM else ""))
    except VoicebotError as exc:
        # A job's own failures carry its id ("Job J7K2QX failed: ..."); refusals before queueing do not need one.
        message = job.error.message if job is not None and job.error is not None else exc.message
        await _tell(progress, message, public_failure(job, exc))
    except Exception as exc:
        if job is not None and job.error is not None:  # delivery crashed: commands.jobs logged it with the job id
            await _tell(progress, job.error.message, public_failure(job, exc))
        else:
            log.exception("discord.clone_crashed", job_id=job.id if job else None, user_id=user_id)
            await _tell(progress, f"Job {job.id} failed: {UNEXPECTED}" if job else UNEXPECTED,
                        public_failure(job, exc))
    finally:
        progress.close()
        structlog.contextvars.unbind_contextvars("job_id")


async def deliver(client: "VoicebotClient", routes: Routes, job: Job, result: CloneResult) -> Route:
    """The audio through the first route that takes it (follow-up, channel, DM: each fitted to its upload
    limit). A result is never dropped: when no route takes it, or delivery crashes or is interrupted, it is kept in
    the bot's `UndeliveredStore` for the admins, and the user is told (`ResultUndelivered`) with the job id."""
    fitted: dict[int, ResultFile | VoicebotError] = {}

    async def message_for(limit: int) -> dict[str, object]:
        if limit not in fitted:
            try:
                fitted[limit] = await fit_result(result.audio, result_filename(job.text), limit)
            except VoicebotError as exc:
                fitted[limit] = exc
        upload = fitted[limit]
        if isinstance(upload, VoicebotError):
            raise upload
        content = "\n".join(filter(None, [upload.note, CONSENT_LINE]))
        return {"content": content, "embed": embed, "file": upload.to_discord()}

    try:
        embed = result_embed(job)
        return await routes.post_result(message_for)
    except NoRouteLeft as exc:
        await _keep(client, job, result, str(exc))
        told = next((f.user_message for f in exc.failures if f.user_message), None)
        raise ResultUndelivered(f"{told or UNDELIVERED} {KEPT}") from exc
    except BaseException as exc:  # a bug or the bot stopping: keep the audio, let the job fail as it would
        await _keep(client, job, result, f"delivery stopped: {describe_failure(exc)}")
        raise


async def _keep(client: "VoicebotClient", job: Job, result: CloneResult, reason: str) -> None:
    try:
        await asyncio.to_thread(client.undelivered.keep, job.id, job.user_id, job.place, result.audio, reason)
    except OSError:
        log.exception("discord.result_lost", job_id=job.id, user_id=job.user_id, reason=reason)


def public_failure(job: Job | None, exc: BaseException) -> str:
    """What the public progress message ends with when the user cannot be told privately: no details."""
    if job is None:
        return "This voice clone failed."
    if isinstance(exc, ResultUndelivered):
        return f"Job {job.id}: the audio could not be delivered; it is kept for you: ask an admin for job {job.id}."
    return f"Job {job.id}: failed."


async def _tell(progress: JobProgress, message: str, public: str) -> None:
    """The failure message, privately where Discord still takes it (the bot may be closing)."""
    try:
        await progress.fail(message, public=public)
    except Exception as exc:
        log.warning("discord.failure_not_delivered", error=message, reason=repr(exc))


async def _complete_language(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=name, value=name) for name in autocomplete_languages(current)]


def clone_command(service: CloneService) -> app_commands.Command:
    """`/clone`; the `variant` option exists only when more than one backend variant is configured."""
    max_chars = min(service.settings.max_text_chars, OPTION_MAX_CHARS)
    Text = app_commands.Range[str, 1, max_chars]
    descriptions = {
        "reference": "A few seconds (1-30 s) of the voice to clone: WAV, MP3, OGG, M4A, FLAC or WebM",
        "text": f"What the cloned voice should say (up to {max_chars} characters)",
        "ref_text": "What is said in the reference clip (optional; makes the clone closer)",
        "language": "Language of the text (default: detect automatically)",
        "variant": "Which backend model variant generates the speech",
    }

    if len(service.variant_names) > 1:
        async def clone(interaction: discord.Interaction, reference: discord.Attachment, text: Text,
                        ref_text: Text | None = None, language: str | None = None,
                        variant: str | None = None) -> None:
            await run_clone(interaction, service, CloneAsk(reference, text, ref_text, language, variant))

        clone = app_commands.choices(variant=[app_commands.Choice(name=name, value=name)
                                              for name in service.variant_names])(clone)
    else:
        del descriptions["variant"]

        async def clone(interaction: discord.Interaction, reference: discord.Attachment, text: Text,  # type: ignore[misc]
                        ref_text: Text | None = None, language: str | None = None) -> None:
            await run_clone(interaction, service, CloneAsk(reference, text, ref_text, language))

    clone = app_commands.describe(**descriptions)(clone)
    clone = app_commands.autocomplete(language=_complete_language)(clone)
    return app_commands.Command(name="clone", description="Speak a text in the voice of a reference clip",
                                callback=clone)


class CloneVoiceModal(discord.ui.Modal, title=CLONE_MENU):
    """What the message menu asks for: the text, and optionally what the clip says."""

    def __init__(self, service: CloneService, reference: discord.Attachment) -> None:
        super().__init__(timeout=15 * 60)
        self.service = service
        self.reference = reference
        max_chars = min(service.settings.max_text_chars, MODAL_MAX_CHARS)
        self.text = discord.ui.TextInput(style=discord.TextStyle.paragraph, max_length=max_chars)
        self.ref_text = discord.ui.TextInput(style=discord.TextStyle.paragraph, max_length=max_chars, required=False)
        self.add_item(discord.ui.Label(text="Text to speak", component=self.text))
        self.add_item(discord.ui.Label(text="Transcript of the clip (optional)",
                                       description="What is said in the voice message; makes the clone closer",
                                       component=self.ref_text))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await run_clone(interaction, self.service,
                        CloneAsk(self.reference, self.text.value, self.ref_text.value or None))

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:
        await report(interaction, error)


def clone_menu(service: CloneService) -> app_commands.ContextMenu:
    """Message menu "Clone this voice": the message's first audio attachment becomes the reference clip."""

    async def clone_this_voice(interaction: discord.Interaction, message: discord.Message) -> None:
        reference = first_audio(message)
        if reference is None:
            await send_ephemeral(interaction, "That message has no audio attachment. Use “Clone this voice” on a "
                                              "voice message or a message with an audio file.")
            return
        try:  # refuse before the user types a text that could not be used anyway
            await service.queue.check_admission(user_key(interaction.user),
                                                is_admin=caller_is_admin(interaction, service))
            interaction.client.cdn.check(reference.url)  # type: ignore[attr-defined]
        except VoicebotError as exc:
            await send_ephemeral(interaction, exc.message)
            return
        await within(interaction.client.timing.call_s,  # type: ignore[attr-defined]
                     interaction.response.send_modal(CloneVoiceModal(service, reference)))

    return app_commands.ContextMenu(name=CLONE_MENU, callback=clone_this_voice)
