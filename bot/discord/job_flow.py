"""One interaction's clone job from refusal or deferral to delivered audio: the flow `/clone`, "Clone this voice"
and `/say` share.

1. `check` refuses what needs no download or database (text, language, cooldown, jobs in flight, a clip off
   Discord's CDN): answered at once, ephemerally;
2. defer ("thinking") inside Discord's 3 s window, then `submit` does the slow part (download the clip, look up
   the voice) and queues the job;
3. the progress message follows the job (queued #n -> cloning the voice -> generating -> uploading), moving to a
   message the bot owns before the interaction token expires (`bot.discord.progress`);
4. the WAV (OGG/Opus when over a route's upload limit) is posted with the timing embed and the consent line:
   follow-up, else a channel message mentioning the user, else a DM; when none takes it, it is kept on disk for
   the admins and the user gets the job id (`deliver`).

Any failure after step 1 is told privately (ephemeral while the token lives, else DM) and the public progress
message goes away.

The accepted job is journaled with its interaction's routes (`commands.job_journal`): when the bot restarts
meanwhile, the user hears that it will continue, and the next process runs or delivers it (`resume_jobs`): the
follow-up while the interaction token lives, else the channel, else a DM.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
import structlog

from backend.errors import VoicebotError
from backend.schema import CloneResult
from bot.discord.calls import CALL_FAILURES, describe_failure
from bot.discord.errors import UNEXPECTED, send_ephemeral
from bot.discord.files import ResultFile, fit_result
from bot.discord.progress import JobProgress
from bot.discord.identity import PLATFORM, member_of, place_of
from bot.discord.routes import NoRouteLeft, Route, Routes, route_of
from commands.errors import JobSuspended, UnexpectedJobError
from commands.job_journal import JobNotResumed, JobOrigin, journaled_as
from commands.jobs import Job
from commands.storage.journal import JournalEntry
from commands.timing import CONSENT_LINE, job_timing_fields, result_filename

if TYPE_CHECKING:
    from bot.discord.client import VoicebotClient

log = structlog.get_logger(__name__)

FIELD_MAX_CHARS = 1024  # Discord's cap on an embed field's value
UNDELIVERED = "Discord did not let the bot post the audio here or send it to you in a direct message."
KEPT = "It is kept for you: ask an admin for it with the job id."

Submit = Callable[[JobProgress], Awaitable[Job]]


class ResultUndelivered(VoicebotError):
    """No route took the result; the audio is kept in the bot's `UndeliveredStore`."""

    code = "undelivered"


def result_embed(job: Job, title: str) -> discord.Embed:
    embed = discord.Embed(title=title, colour=discord.Colour.blurple())
    for name, value in job_timing_fields(job):
        if name == "Text":
            value = discord.utils.escape_markdown(value)
        embed.add_field(name=name, value=value[:FIELD_MAX_CHARS] or "-", inline=name != "Text")
    return embed


async def run_job(interaction: discord.Interaction, check: Callable[[], Awaitable[None]], submit: Submit, *, title: str,
                  starting: str) -> None:
    """The whole flow for one interaction; never raises. `title` heads the result's embed, `starting` is the
    progress message's first words (while `submit` runs)."""
    client: VoicebotClient = interaction.client  # type: ignore[assignment]
    client.track(asyncio.current_task())
    try:
        await check()
    except VoicebotError as exc:
        await send_ephemeral(interaction, exc.message)
        return

    routes = Routes.for_interaction(interaction, client.timing)
    progress = JobProgress(routes, client.timing)
    try:
        await progress.start(starting)
    except CALL_FAILURES as exc:  # the 3 s window passed (a stalled event loop) or Discord failed
        log.warning("discord.defer_failed", reason=describe_failure(exc), user_id=interaction.user.id)
        return
    job: Job | None = None
    try:
        with journaled_as(JobOrigin(member_of(interaction), place_of(interaction), route_of(interaction))):
            job = await submit(progress)
        progress.job_id = interaction.extras["job_id"] = job.id
        structlog.contextvars.bind_contextvars(job_id=job.id)
        result = await job.wait()
        async with job.delivering():
            progress.show(job.describe())  # "uploading the audio…", before a transcode can take its time
            route = await deliver(client, routes, job, result, title)
        await progress.finish(job.describe() + (" — sent to you in a direct message." if route is Route.DM else ""))
    except VoicebotError as exc:
        # A job's own failures carry its id ("Job J7K2QX failed: ..."); refusals before queueing do not need one.
        message = job.error.message if job is not None and job.error is not None else exc.message
        await _tell(progress, message, public_failure(job, exc))
    except Exception as exc:
        if job is not None and job.error is not None:  # delivery crashed: commands.jobs logged it with the job id
            await _tell(progress, job.error.message, public_failure(job, exc))
        else:
            log.exception("discord.job_flow_crashed", job_id=job.id if job else None, user_id=interaction.user.id)
            await _tell(progress, f"Job {job.id} failed: {UNEXPECTED}" if job else UNEXPECTED,
                        public_failure(job, exc))
    finally:
        progress.close()
        structlog.contextvars.unbind_contextvars("job_id")


async def deliver(client: VoicebotClient, routes: Routes, job: Job, result: CloneResult, title: str) -> Route:
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
        embed = result_embed(job, title)
        return await routes.post_result(message_for)
    except NoRouteLeft as exc:
        await _keep(client, job, result, str(exc))
        told = next((f.user_message for f in exc.failures if f.user_message), None)
        raise ResultUndelivered(f"{told or UNDELIVERED} {KEPT}") from exc
    except BaseException as exc:  # a bug or the bot stopping: keep the audio, let the job fail as it would
        await _keep(client, job, result, f"delivery stopped: {describe_failure(exc)}")
        raise


async def _keep(client: VoicebotClient, job: Job, result: CloneResult, reason: str) -> None:
    try:
        await asyncio.to_thread(client.undelivered.keep, job.id, job.user_id, job.place, result.audio, reason)
    except OSError:
        log.exception("discord.result_lost", job_id=job.id, user_id=job.user_id, reason=reason)


def public_failure(job: Job | None, exc: BaseException) -> str:
    """What the public progress message ends with when the user cannot be told privately: no details."""
    if job is None:
        return "This voice clone failed."
    if isinstance(exc, JobSuspended):
        return f"Job {job.id}: paused while the bot restarts; it continues when the bot is back."
    if isinstance(exc, ResultUndelivered):
        return f"Job {job.id}: the audio could not be delivered; it is kept for you: ask an admin for job {job.id}."
    return f"Job {job.id}: failed."


async def _tell(progress: JobProgress, message: str, public: str) -> None:
    """The failure message, privately where Discord still takes it (the bot may be closing)."""
    try:
        await progress.fail(message, public=public)
    except Exception as exc:
        log.warning("discord.failure_not_delivered", error=message, reason=repr(exc))


async def resume_jobs(client: VoicebotClient) -> int:
    """Take over the Discord jobs a previous process left in the journal (after login: the REST API is all it
    needs). They are queued again one by one, oldest first, so they keep their order; each is then followed
    to its user as a tracked flow. Returns how many were found."""
    journal = client.service.journal
    if journal is None:
        return 0
    entries = await journal.unfinished(PLATFORM)
    loop = asyncio.get_running_loop()
    for entry in entries:
        routes = Routes.from_route(client, entry.route, client.timing)
        try:
            job = await journal.resume(client.service, entry)
        except JobNotResumed as exc:  # too old, or its clip is gone: the user hears why
            told = routes.tell_privately(exc.message)
            client.track(loop.create_task(told, name=f"discord-not-resumed-{entry.job_id}"))
            continue
        except VoicebotError as exc:  # stopping again already: the entries stay for the next start
            log.info("discord.resume_stopped", reason=exc.code)
            break
        client.track(loop.create_task(_follow_resumed(client, routes, job, entry), name=f"discord-resumed-{job.id}"))
    if entries:
        log.info("discord.jobs_resumed", jobs=len(entries))
    return len(entries)


async def _follow_resumed(client: VoicebotClient, routes: Routes, job: Job, entry: JournalEntry) -> None:
    """A resumed job to its user: told privately that it continues, then the audio by the first route that
    takes it, or why it failed. Never raises."""
    structlog.contextvars.bind_contextvars(job_id=job.id)
    try:
        if client.library is not None:
            await client.library.record_resumed(job, entry)
        await routes.tell_privately(f"The bot restarted; job {job.id} continues: the audio comes here when it is "
                                    "ready.")
        result = await job.wait()
        async with job.delivering():
            await deliver(client, routes, job, result, "Saved voice" if entry.voice_id else "Voice clone")
    except VoicebotError as exc:
        await routes.tell_privately(job.error.message if job.error is not None else exc.message)
    except Exception:
        log.exception("discord.resumed_job_crashed", job_id=job.id)
        if not job.finished:
            job.mark_failed(UnexpectedJobError(UNEXPECTED))
        await routes.tell_privately(f"Job {job.id} failed: {UNEXPECTED}")
    finally:
        structlog.contextvars.unbind_contextvars("job_id")
