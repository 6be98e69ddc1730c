"""The clone use case: check a request completely, queue it, call the backend, hand the result back.

`CloneService.submit` raises before anything is queued or sent when the request is refused (bad text,
transcript, language, variant or clip; cooldown; too many jobs; full queue), so an adapter can answer within
a platform's acknowledgement window. After that every outcome arrives through the returned `Job`: the backend's
answer is checked (`commands.result_check`) before an adapter can post it, and the call has a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import structlog

from backend.clients.base import BackendClient
from backend.errors import BackendTimeout, InvalidInput
from backend.intake import AudioLimits, ReferenceClip, check_size, read_reference
from backend.languages import normalize_language
from backend.schema import CloneRequest, CloneResult, Progress
from backend.validation import check_text
from commands.health import BotHealth, check_health
from commands.job_journal import current_origin
from commands.jobs import Job, JobQueue, ProgressCallback
from commands.long_text import clone_text
from commands.recent_clips import RecentClips
from commands.result_check import check_result
from commands.settings import CommandSettings

if TYPE_CHECKING:
    from commands.job_journal import JobJournaling

log = structlog.get_logger(__name__)
ReadReference = Callable[[bytes, AudioLimits, str | None], ReferenceClip]


def _abandoned(call: asyncio.Future[CloneResult]) -> None:
    """The end of a backend call nobody waits for any more (past the deadline, or the job was cancelled): its
    outcome is logged here rather than as "exception was never retrieved"."""
    error = None if call.cancelled() else call.exception()
    log.info("clone.abandoned_call_ended", cancelled=call.cancelled(), error=repr(error) if error else None)


class CloneService:
    """One per process: the backend variants, the limits and the shared job queue.

    `backend` is one client or a mapping of variant name -> client ("fa2", "sdpa" ...); the first (or
    `default_variant`) serves requests that name none. `read_reference` is injectable for tests.
    """

    def __init__(
        self,
        backend: BackendClient | Mapping[str, BackendClient],
        settings: CommandSettings | None = None,
        queue: JobQueue | None = None,
        *,
        default_variant: str | None = None,
        read_reference: ReadReference = read_reference,
    ) -> None:
        self.settings = settings or CommandSettings()
        self.queue = queue or JobQueue.from_settings(self.settings)
        self.variants: dict[str, BackendClient] = (
            dict(backend) if isinstance(backend, Mapping) else {backend.name: backend}
        )
        if not self.variants:
            raise ValueError("CloneService needs at least one backend")
        self.default_variant = default_variant or next(iter(self.variants))
        if self.default_variant not in self.variants:
            raise ValueError(f"default variant {self.default_variant!r} is not one of {list(self.variants)}")
        self._read_reference = read_reference
        self.journal: JobJournaling | None = None
        self.recent_clips = RecentClips()  # what `/speak` speaks with when no voice is named

    def use_journal(self, journal: JobJournaling) -> None:
        """Journal the jobs submitted with an origin (`commands.job_journal.journaled_as`), and let a restart
        suspend them instead of failing them."""
        self.journal = journal
        self.queue.journal = journal

    # -- choices the adapters offer ----------------------------------------------------------------------
    @property
    def variant_names(self) -> list[str]:
        return list(self.variants)

    def backend_for(self, variant: str | None) -> tuple[str, BackendClient]:
        """(name, client) for a user's variant choice; None or "" means the default."""
        name = (variant or "").strip() or self.default_variant
        client = self.variants.get(name) or self.variants.get(name.lower())
        if client is None:
            raise InvalidInput(
                f"Unknown backend variant {variant!r}. Choose one of: {', '.join(self.variants)}.",
                code="unknown_variant",
            )
        return (name if name in self.variants else name.lower()), client

    # -- the use case ------------------------------------------------------------------------------------
    async def check_request(
        self,
        user_id: str,
        text: str,
        ref_text: str | None = None,
        language: str | None = None,
        variant: str | None = None,
        *,
        reference_size: int | None = None,
        is_admin: bool = False,
    ) -> None:
        """Every check of `submit` that needs no audio bytes (text, transcript, language, variant, the clip's
        size when known, admission), so an adapter can refuse before downloading the clip. Raises like `submit`."""
        await self._check(user_id, text, ref_text, language, variant, reference_size=reference_size, is_admin=is_admin)

    async def _check(
        self, user_id: str, text: str, ref_text: str | None, language: str | None, variant: str | None, *,
        reference_size: int | None, is_admin: bool,
    ) -> tuple[str, str | None, str, str, BackendClient]:
        limits = self.settings
        text = check_text(text, limits.max_text_chars)
        transcript = None
        if ref_text is not None and ref_text.strip():
            transcript = check_text(ref_text, limits.max_transcript_chars, field="transcript")
        language = normalize_language(language)
        variant_name, backend = self.backend_for(variant)
        if reference_size is not None:
            check_size(reference_size, limits.audio_limits)
        await self.queue.check_admission(user_id, is_admin=is_admin)  # cheap: refuse before decoding
        return text, transcript, language, variant_name, backend

    async def submit(
        self,
        user_id: str,
        place: str,
        reference: bytes,
        filename: str | None,
        text: str,
        ref_text: str | None = None,
        language: str | None = None,
        variant: str | None = None,
        *,
        is_admin: bool = False,
        on_progress: ProgressCallback | None = None,
        seed: int | None = None,
        remember_clip: bool = True,
    ) -> Job:
        """Validate everything, then queue the job; raises `VoicebotError` subclasses when refused:
        InvalidInput (text, transcript, language, variant, clip), TooManyJobs, Cooldown, QueueFull, BotRestarting,
        StorageUnavailable (the shared limits cannot be reached).

        `user_id` should be platform-qualified ("discord:1234", "slack:U0ABC"); `place` says where to answer
        ("discord:guild/channel"). The clip is decoded in a worker thread (ffmpeg may run); with
        `remember_clip` it becomes the user's last clip (`recent_clips`, for `/speak`). Inside
        `journaled_as(origin)`, with a journal in use, the accepted job is written down for a restart.
        """
        text, transcript, language, variant_name, backend = await self._check(
            user_id, text, ref_text, language, variant, reference_size=len(reference), is_admin=is_admin
        )
        clip = await asyncio.to_thread(self._read_reference, reference, self.settings.audio_limits, filename)
        work = self._work(backend, CloneRequest(reference=clip.wav, text=text, ref_text=transcript,
                                                language=language, seed=seed))
        on_accept = None
        origin = current_origin()
        if self.journal is not None and origin is not None:
            journal = self.journal

            def on_accept(job: Job) -> None:
                journal.accept(job, origin, clip.wav, transcript)

        # admission again, atomically: another command or process may have admitted the user meanwhile
        job = await self.queue.submit(
            work, user_id=user_id, place=place, text=text, language=language, variant=variant_name,
            on_progress=on_progress, is_admin=is_admin, on_accept=on_accept,
        )
        if remember_clip:
            self.recent_clips.remember(user_id, clip.wav, transcript)
        return job

    def work_for(self, clip_wav: bytes, text: str, transcript: str | None, language: str,
                 variant: str | None) -> Callable[[Job], Awaitable[CloneResult]]:
        """The backend call of a job accepted earlier (a journaled one, resumed): its clip is the intake's WAV
        and its inputs were checked then."""
        _, backend = self.backend_for(variant)
        return self._work(backend, CloneRequest(reference=clip_wav, text=text, ref_text=transcript,
                                                language=language))

    def _work(self, backend: BackendClient, request: CloneRequest) -> Callable[[Job], Awaitable[CloneResult]]:
        async def work(job: Job) -> CloneResult:
            return await self._clone(job, backend, request)

        return work

    async def wait(self, job: Job) -> CloneResult:
        """The job's result, or raise its error ("Job J7K2QX failed: ...")."""
        return await job.wait()

    async def _clone(self, job: Job, backend: BackendClient, request: CloneRequest) -> CloneResult:
        """The backend call under the job's deadline, and its answer checked (`check_result`) before anyone
        posts it. The call runs as its own task and is abandoned at the deadline: a backend that ignores the
        cancellation cannot hold the job or its slot."""

        async def on_progress(progress: Progress) -> None:
            self.queue.progress(job, progress)

        timeout_s = self.settings.job_timeout_s
        call = asyncio.ensure_future(clone_text(backend, request, on_progress))
        try:
            done, _ = await asyncio.wait({call}, timeout=timeout_s)
        finally:
            if not call.done():
                call.cancel()
                call.add_done_callback(_abandoned)
        if not done:
            log.warning("clone.timeout", job_id=job.id, variant=job.variant, timeout_s=timeout_s)
            raise BackendTimeout(
                f"the backend did not finish within {timeout_s:g} s. Try a shorter text or try again later."
            )
        return check_result(call.result())  # a bad answer fails the job; the queue logs it with its detail

    # -- health ------------------------------------------------------------------------------------------
    async def health(self, *, timeout_s: float = 30.0) -> BotHealth:
        """Every variant's backend health plus this process's queue statistics (never raises)."""
        return await check_health(self.variants, self.queue, timeout_s=timeout_s)

    async def aclose(self) -> None:
        """Close every backend client (after `queue.drain`)."""
        for client in self.variants.values():
            await client.aclose()
