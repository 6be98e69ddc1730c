"""The clone use case: every refusal happens before the backend or the queue; failures name the job."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import numpy as np
import pytest
from structlog.testing import capture_logs

from backend.errors import BackendFailed, BackendTimeout, BackendUnavailable, InvalidInput, VoicebotError
from backend.intake import ReferenceClip
from backend.languages import LANGUAGES
from backend.schema import FRAME_SECONDS, Progress
from commands.clone import CloneService
from commands.errors import Cooldown, QueueFull, TooManyJobs, UnexpectedJobError
from commands.jobs import JobQueue, JobStatus
from commands.result_check import USER_MESSAGE
from commands.settings import CommandSettings
from commands.voices import autocomplete_languages, language_choices
from tests.clips import sine_clip
from tests.fakes import BAD_ANSWERS, FakeBackend, IgnoresCancellation, NeverAnswers, RaisesBaseException, fake_result


def settings(**overrides) -> CommandSettings:
    """Settings independent of the developer's environment and .env file."""
    values = {"cooldown_s": 0, "max_jobs_per_user": 5} | overrides
    return CommandSettings(_env_file=None, **values)


@pytest.fixture
async def services():
    """CloneService factory; queues are drained at teardown so no job task outlives the test's loop."""
    made: list[CloneService] = []

    def make(backend=None, queue: JobQueue | None = None, **options) -> CloneService:
        config = options.pop("settings", None) or settings()
        service = CloneService(backend or FakeBackend(), config, queue, **options)
        made.append(service)
        return service

    yield make
    for service in made:
        await service.queue.drain(timeout=0)


@pytest.fixture(scope="module")
def clip() -> bytes:
    return sine_clip(seconds=3.0, sample_rate=16_000)


async def submit(service: CloneService, reference: bytes, user: str = "discord:1", **kwargs):
    options = {"filename": "me.wav", "text": "Hello there, general Kenobi."} | kwargs
    return await service.submit(user, "discord:guild/channel", reference, **options)


# -- the happy path ----------------------------------------------------------------------------------------
async def test_submit_validates_normalises_and_sends_one_request(services, clip):
    backend = FakeBackend(hold=True)
    service = services(backend)
    job = await submit(service, clip, text="  Hello there.  ", ref_text="  my transcript ", language="en")
    call = await backend.next_call()

    assert job.status is JobStatus.GENERATING  # the backend's on_stage moved it on
    assert (job.user_id, job.place, job.text, job.language, job.variant) == (
        "discord:1", "discord:guild/channel", "Hello there.", "English", "fake")
    request = call.request
    assert (request.text, request.ref_text, request.language) == ("Hello there.", "my transcript", "English")
    assert request.reference[:4] == b"RIFF"

    call.release()
    result = await service.wait(job)
    assert result.audio[:4] == b"RIFF" and result.audio_seconds == pytest.approx(2.0)
    assert job.status is JobStatus.GENERATING  # not DONE until the adapter delivered it
    async with job.delivering() as delivered:
        assert delivered is result and job.status is JobStatus.UPLOADING
    assert job.status is JobStatus.DONE


async def test_blank_transcript_means_none_and_the_clip_is_decoded_by_the_intake(services):
    calls = []

    def fake_read(data, limits, filename):
        calls.append((data, limits, filename))
        return ReferenceClip(np.zeros(16_000, np.float32), 16_000, "mp3", b"RIFF-normalised")

    backend = FakeBackend()
    service = services(backend, settings=settings(max_ref_mib=2, max_ref_seconds=12), read_reference=fake_read)
    job = await submit(service, b"ID3...", ref_text="   ", filename="memo.mp3")
    await job.wait()
    assert calls[0][0] == b"ID3..." and calls[0][2] == "memo.mp3"
    assert (calls[0][1].max_bytes, calls[0][1].max_seconds) == (2 * 1024 * 1024, 12)
    assert backend.calls[0].reference == b"RIFF-normalised"
    assert backend.calls[0].ref_text is None


# -- refusals: nothing reaches the backend or the queue -----------------------------------------------------
REFUSALS = {
    "empty text": ({"text": "   "}, "empty_text"),
    "long text": ({"text": "x" * 5001}, "text_too_long"),
    "long transcript": ({"ref_text": "y" * 1001}, "text_too_long"),
    "unknown language": ({"language": "Klingon"}, "unknown_language"),
    "unknown variant": ({"variant": "turbo"}, "unknown_variant"),
    "empty clip": ({"reference": b""}, "empty_audio"),
    "not audio": ({"reference": b"<!doctype html><html>404</html>"}, "not_audio"),
    "short clip": ({"reference": sine_clip(seconds=0.5)}, "audio_too_short"),
    "long clip": ({"reference": sine_clip(seconds=31.0, sample_rate=8_000)}, "audio_too_long"),
    "silent clip": ({"reference": sine_clip(seconds=2.0, amplitude=0.0)}, "silent_audio"),
    "large clip": ({"reference": b"\0" * (10 * 1024 * 1024 + 1)}, "audio_too_large"),
}


@pytest.mark.parametrize("change, code", REFUSALS.values(), ids=REFUSALS.keys())
async def test_bad_input_is_refused_before_the_backend_and_the_queue(services, clip, change, code):
    backend = FakeBackend()
    service = services(backend, settings=settings(cooldown_s=10))
    request = {"reference": clip} | change
    with pytest.raises(InvalidInput) as refused:
        await submit(service, **request)
    assert refused.value.code == code
    assert backend.calls == []
    assert (service.queue.queued, service.queue.running) == (0, 0)
    await submit(service, clip)  # the refusal started no cooldown


async def test_refusal_messages_are_specific(services, clip):
    service = services({"fa2": FakeBackend("fa2"), "sdpa": FakeBackend("sdpa")})
    with pytest.raises(InvalidInput, match=r"Unknown backend variant 'turbo'\. Choose one of: fa2, sdpa\."):
        await submit(service, clip, variant="turbo")
    with pytest.raises(InvalidInput, match=r"The transcript is 1001 characters; the limit is 1000\."):
        await submit(service, clip, ref_text="y" * 1001)
    with pytest.raises(InvalidInput, match="“memo.txt”"):
        await submit(service, b"just some notes", filename="memo.txt")


async def test_cooldown_too_many_jobs_and_queue_full_are_refused_before_decoding(services, clip):
    decoded = []

    def counting_read(data, limits, filename):
        from backend.intake import read_reference

        decoded.append(filename)
        return read_reference(data, limits, filename)

    backend = FakeBackend(hold=True)
    config = settings(cooldown_s=60, max_jobs_per_user=1, max_concurrent_jobs=1, max_queue=1)
    service = services(backend, settings=config, read_reference=counting_read)
    first = await submit(service, clip, user="slack:U1")
    with pytest.raises(TooManyJobs):
        await submit(service, clip, user="slack:U1")
    await submit(service, clip, user="slack:U2")
    with pytest.raises(QueueFull):
        await submit(service, clip, user="slack:U3")
    (await backend.next_call()).release()
    await first.wait()
    with pytest.raises(Cooldown) as refused:
        await submit(service, clip, user="slack:U1")
    assert 0 < refused.value.seconds_left <= 60
    assert decoded == ["me.wav", "me.wav"]  # only the two accepted submissions decoded their clip


async def test_check_request_refuses_without_the_audio(services, clip):
    service = services(settings=settings(max_ref_mib=1, cooldown_s=30))
    await service.check_request("discord:1", "Hello", None, "de", None, reference_size=1000)
    with pytest.raises(InvalidInput) as refused:
        await service.check_request("discord:1", "Hello", reference_size=2 * 1024 * 1024)
    assert refused.value.code == "audio_too_large"
    with pytest.raises(InvalidInput, match="Unknown language"):
        await service.check_request("discord:1", "Hello", language="Elvish")
    with pytest.raises(InvalidInput, match="empty"):
        await service.check_request("discord:1", "")
    assert service.queue.queued == service.queue.running == 0


async def test_check_request_applies_admission(services, clip):
    service = services(settings=settings(cooldown_s=30))
    await submit(service, clip)
    with pytest.raises(Cooldown):
        await service.check_request("discord:1", "Hello again")
    await service.check_request("discord:1", "Hello again", is_admin=True)


# -- variants ----------------------------------------------------------------------------------------------
async def test_variants_route_to_their_backend_and_default_to_the_first(services, clip):
    fa2, sdpa = FakeBackend("modal:fa2"), FakeBackend("modal:sdpa")
    service = services({"fa2": fa2, "sdpa": sdpa})
    assert (service.variant_names, service.default_variant) == (["fa2", "sdpa"], "fa2")
    await (await submit(service, clip)).wait()
    job = await submit(service, clip, variant="SDPA", user="discord:2")
    await job.wait()
    assert (len(fa2.calls), len(sdpa.calls), job.variant) == (1, 1, "sdpa")

    chosen = services({"fa2": fa2, "sdpa": sdpa}, default_variant="sdpa")
    assert chosen.backend_for(None) == ("sdpa", sdpa)
    with pytest.raises(ValueError):
        services({"fa2": fa2}, default_variant="nope")


# -- failures after acceptance -----------------------------------------------------------------------------
async def test_backend_failure_fails_the_job_with_its_id(services, clip):
    backend = FakeBackend(error=BackendUnavailable("The Modal app 'voicebot-tts' is not deployed."))
    service = services(backend)
    job = await submit(service, clip)
    with pytest.raises(BackendUnavailable) as failed:
        await service.wait(job)
    assert str(failed.value) == f"Job {job.id} failed: The Modal app 'voicebot-tts' is not deployed."
    assert failed.value.job_id == job.id
    assert job.status is JobStatus.FAILED
    assert service.queue.stats().failed == 1


async def test_unexpected_backend_exception_becomes_a_generic_message_and_a_log_entry(services, clip):
    service = services(FakeBackend(error=KeyError("internal detail")))
    with capture_logs() as logs:
        job = await submit(service, clip)
        with pytest.raises(UnexpectedJobError) as failed:
            await job.wait()
    assert failed.value.message == f"Job {job.id} failed: unexpected error; the admins have the log."
    assert any(entry["event"] == "job.crashed" and entry["job_id"] == job.id for entry in logs)


async def test_timeout_fails_with_backend_timeout_naming_the_job(services, clip):
    backend = NeverAnswers()
    service = services(backend, settings=settings(job_timeout_s=0.05))
    job = await submit(service, clip)
    with pytest.raises(BackendTimeout) as failed:
        await job.wait()
    assert failed.value.message.startswith(f"Job {job.id} failed: the backend did not finish within 0.05 s.")
    assert failed.value.code == "backend_timeout"
    assert len(backend.calls) == 1


async def test_a_timeout_error_raised_by_the_backend_itself_is_not_mistaken_for_ours(services, clip):
    service = services(FakeBackend(error=TimeoutError("socket read timed out")))
    with capture_logs():
        job = await submit(service, clip)
        with pytest.raises(UnexpectedJobError):
            await job.wait()


async def test_failed_job_keeps_the_error_class_and_code(services, clip):
    error = BackendFailed("CUDA out of memory: try a shorter text.", code="out_of_memory")
    job = await submit(services(FakeBackend(error=error)), clip)
    with pytest.raises(BackendFailed) as failed:
        await job.wait()
    assert isinstance(failed.value, VoicebotError) and failed.value.code == "out_of_memory"
    assert failed.value.__cause__ is error


# -- health, languages, settings, imports -------------------------------------------------------------------
async def test_service_health_and_close(services):
    backend = FakeBackend()
    service = services(backend)
    health = await service.health()
    assert health.ok and health.variants[0].name == "fake" and health.queue.done == 0
    await service.aclose()
    assert backend.closed


def test_language_choices_and_autocomplete():
    assert language_choices() == list(LANGUAGES) and language_choices()[0] == "Auto"
    assert autocomplete_languages("") == list(LANGUAGES)
    assert autocomplete_languages(None, limit=3) == ["Auto", "English", "Chinese"]
    assert autocomplete_languages("en")[0] == "English"  # alias first
    assert autocomplete_languages("JP") == ["Japanese"]
    assert autocomplete_languages("fr") == ["French"]
    assert autocomplete_languages("ch") == ["Chinese", "French"]  # prefix before substring
    assert autocomplete_languages("ese") == ["Chinese", "Japanese", "Portuguese"]  # contained, in list order
    assert autocomplete_languages("span") == ["Spanish"]
    assert autocomplete_languages("xyz") == []
    assert autocomplete_languages("e", limit=2) == autocomplete_languages("e")[:2]


def test_settings_defaults_and_environment(monkeypatch):
    defaults = CommandSettings(_env_file=None)
    assert (defaults.max_concurrent_jobs, defaults.max_jobs_per_user, defaults.cooldown_s, defaults.max_queue,
            defaults.max_text_chars, defaults.max_transcript_chars, defaults.job_timeout_s, defaults.admin_user_ids) == (
        2, 2, 10, 50, 5000, 1000, 600, [])
    limits = defaults.audio_limits
    assert (limits.max_bytes, limits.min_seconds, limits.max_seconds) == (10 * 1024 * 1024, 1.0, 30.0)

    monkeypatch.setenv("VOICEBOT_MAX_CONCURRENT_JOBS", "1")
    monkeypatch.setenv("VOICEBOT_ADMIN_USER_IDS", "discord:1234, slack:U0ABC")
    configured = CommandSettings(_env_file=None)
    assert configured.max_concurrent_jobs == 1
    assert configured.admin_user_ids == ["discord:1234", "slack:U0ABC"]
    monkeypatch.setenv("VOICEBOT_ADMIN_USER_IDS", '["1234", 5678]')
    assert CommandSettings(_env_file=None).admin_user_ids == ["1234", "5678"]
    monkeypatch.setenv("VOICEBOT_MAX_CONCURRENT_JOBS", "0")
    with pytest.raises(ValueError):
        CommandSettings(_env_file=None)


def test_commands_import_no_platform_or_gpu_library():
    code = (
        "import sys, commands.clone, commands.jobs, commands.health, commands.timing, commands.voices, "
        "commands.settings, commands.errors\n"
        "loaded = sorted(m for m in ('discord', 'slack_bolt', 'slack_sdk', 'torch') if m in sys.modules)\n"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- what the backend answers is checked; no job hangs -------------------------------------------------------
WATCHDOG = 30.0  # seconds: far beyond every deadline here; reaching it means a job was left hanging


@pytest.mark.parametrize("name", list(BAD_ANSWERS))
async def test_a_broken_answer_fails_the_job_and_is_never_handed_to_an_adapter(services, clip, name):
    """None, random bytes, empty or truncated audio, another rate, stereo, a length that does not match: a
    backend failure with its code and the job id, the slot freed for the next job."""
    backend = FakeBackend(answer=BAD_ANSWERS[name])
    service = services(backend, settings=settings(max_concurrent_jobs=1))
    job, following = await submit(service, clip), await submit(service, clip, user="discord:2")

    with pytest.raises(BackendFailed) as failed:
        await asyncio.wait_for(job.wait(), WATCHDOG)
    assert failed.value.code == "bad_audio" and job.result is None and job.status is JobStatus.FAILED
    assert failed.value.message == f"Job {job.id} failed: {USER_MESSAGE}"
    assert failed.value.detail  # what was wrong, for the admins and the log
    with pytest.raises(BackendFailed):
        await asyncio.wait_for(following.wait(), WATCHDOG)  # the next job ran (and got the same answer)


async def test_an_answer_within_a_frame_of_its_reported_length_is_accepted(services, clip):
    result = fake_result(2.0)
    backend = FakeBackend(answer=lambda: result.model_copy(update={"audio_seconds": 2.0 + FRAME_SECONDS}))
    job = await submit(services(backend), clip)
    assert (await asyncio.wait_for(job.wait(), WATCHDOG)).audio == result.audio


async def test_a_backend_that_ignores_cancellation_still_times_out_and_frees_its_slot(services, clip):
    backend = IgnoresCancellation()
    service = services(backend, settings=settings(job_timeout_s=0.05, max_concurrent_jobs=1))
    job, following = await submit(service, clip), await submit(service, clip, user="discord:2")

    with pytest.raises(BackendTimeout) as failed:
        await asyncio.wait_for(job.wait(), WATCHDOG)
    assert failed.value.message.startswith(f"Job {job.id} failed: the backend did not finish within 0.05 s.")
    with pytest.raises(BackendTimeout):
        await asyncio.wait_for(following.wait(), WATCHDOG)  # it got the slot, and its own deadline
    assert len(backend.calls) == 2 and backend.cancellations >= 1
    backend.release()


async def test_a_base_exception_from_the_backend_fails_the_job_and_frees_its_slot(services, clip):
    backend = FakeBackend(hold=True)
    service = services(backend, settings=settings(max_concurrent_jobs=1))
    with capture_logs() as logs:
        job, following = await submit(service, clip), await submit(service, clip, user="discord:2")
        (await backend.next_call()).fail(RaisesBaseException("from a library"))
        with pytest.raises(UnexpectedJobError):
            await asyncio.wait_for(job.wait(), WATCHDOG)
    (await asyncio.wait_for(backend.next_call(), WATCHDOG)).release()
    assert (await asyncio.wait_for(following.wait(), WATCHDOG)).audio_seconds == pytest.approx(2.0)
    assert any(entry["event"] == "job.crashed" and entry["job_id"] == job.id for entry in logs)


async def test_the_backends_progress_shows_as_a_bar_in_the_jobs_line(services, clip):
    progress = Progress(stage="generating", frames=76, frame_budget=146)
    backend = FakeBackend(hold=True, progress=[progress])
    job = await submit(services(backend), clip)
    call = await backend.next_call()

    assert job.progress == progress
    assert re.fullmatch(rf"Job {job.id}: generating ▓▓▓▓░░░░ 52% · 6\.1 s of audio · \d+ s", job.describe())
    call.release()
    await job.wait()


async def test_a_backend_failure_does_not_start_the_users_cooldown(services, clip):
    """The user was told to try again: an immediate retry is accepted (a job that failed on its input keeps
    the cooldown, see test_jobs)."""
    backend = FakeBackend(error=BackendUnavailable("The voice backend is unavailable; try again later."))
    service = services(backend, settings=settings(cooldown_s=10))
    job = await submit(service, clip)
    with pytest.raises(BackendUnavailable):
        await job.wait()
    backend.error = None
    retry = await submit(service, clip)
    assert (await retry.wait()).audio_seconds == pytest.approx(2.0)
    with pytest.raises(Cooldown):
        await submit(service, clip)  # the retry that was accepted started it
