"""The health report: backend variants (up, down, hanging, broken) plus queue statistics; the admin check."""

from __future__ import annotations

import httpx
import pytest
from structlog.testing import capture_logs

from backend.clients.failures import NOT_SET_UP, UNREACHABLE
from backend.clients.http_client import HttpBackend
from backend.errors import BackendNotConfigured, BackendUnavailable
from backend.settings import BackendSettings
from commands.errors import PermissionDenied
from commands.health import check_health, health_fields, is_admin, require_admin
from commands.jobs import JobQueue
from commands.settings import CommandSettings
from tests.fakes import FakeBackend, NeverAnswers

BACKEND_LABELS = ["Backend", "Model", "Variant", "GPU", "Attention", "GPU memory", "Voice cache", "Backend uptime",
                  "Versions"]
QUEUE_LABELS = ["Bot uptime", "Queue", "Jobs", "Total time", "Queue wait", "Real-time factor"]


async def test_healthy_backend_and_an_idle_queue():
    health = await check_health(FakeBackend(), JobQueue(2, max_queue=50))
    assert health.ok
    fields = health_fields(health)
    assert [label for label, _ in fields] == BACKEND_LABELS + QUEUE_LABELS
    values = dict(fields)
    assert values["Backend"] == "ok, warm"
    assert values["Model"] == "Qwen/Qwen3-TTS-12Hz-0.6B-Base"
    assert values["GPU"] == "Fake GPU"
    assert values["Attention"] == "sdpa, bfloat16"
    assert values["GPU memory"] == "4.2 of 80.0 GB allocated (peak 6.1 GB)"
    assert values["Voice cache"] == "3 of 64 voices, 10 hits, 3 misses"
    assert values["Versions"] == "torch 2.9.0, qwen-tts 0.1.1"
    assert values["Queue"] == "0 waiting (max 50), 0 of 2 running"
    assert values["Jobs"] == "0 done, 0 failed"
    assert values["Total time"] == values["Real-time factor"] == "no jobs yet"


async def test_a_stock_fallback_is_reported_with_its_reason():
    backend = FakeBackend()
    fallen_back = backend.health_report.model_copy(
        update={"engine_mode": "stock", "fallback_reason": "RuntimeError('Failed to find C compiler')"})
    backend.health_report = fallen_back
    values = dict(health_fields(await check_health(backend, JobQueue(2, max_queue=50))))
    assert values["Fast engine"] == "off, running stock qwen-tts: RuntimeError('Failed to find C compiler')"
    assert values["Variant"].endswith("(stock)")


async def test_fast_graphs_say_how_many_are_compiled_and_which_compiles_failed():
    from backend.schema import FastGraphs

    backend = FakeBackend()
    backend.health_report = backend.health_report.model_copy(update={"fast_graphs": FastGraphs(
        compiled=47, eager=3, capturing=True, failed={"16x2560": "OutOfMemoryError: CUDA out of memory"})})
    values = dict(health_fields(await check_health(backend, JobQueue(2, max_queue=50))))
    assert values["Fast graphs"] == ("47 compiled, 3 eager (compiling in the background); "
                                     "failed: 16x2560: OutOfMemoryError: CUDA out of memory")


async def test_continuous_batch_shows_rows_waiting_and_how_full_it_runs():
    from backend.schema import FastBatch

    backend = FakeBackend()
    backend.health_report = backend.health_report.model_copy(update={"fast_batch": FastBatch(
        active=5, waiting=2, max_batch=16, frames=123456, rows_per_step=6.24)})
    values = dict(health_fields(await check_health(backend, JobQueue(2, max_queue=50))))
    assert values["Continuous batch"] == "5 of 16 rows decoding, 2 waiting; 123,456 frames so far, 6.2 rows per step"


async def test_unreachable_backend_is_reported_not_raised():
    down = FakeBackend(health_error=BackendUnavailable("The Modal app 'voicebot-tts' is not deployed."))
    health = await check_health(down)
    assert not health.ok and health.queue is None
    assert health.variants[0].error_code == "backend_unavailable"
    assert health_fields(health) == [("Backend", "unreachable: The Modal app 'voicebot-tts' is not deployed.")]


SECRET_URL = "http://voicebot:hunter2@tts.example:8000/v1?api_key=k3y"


def refusing(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("Connection refused", request=request)


@pytest.mark.parametrize(("transport", "told", "detail"), [
    (httpx.MockTransport(refusing), UNREACHABLE,
     "http://tts.example:8000/v1/health cannot be reached (ConnectError): check VOICEBOT_HTTP_URL and that the "
     "service runs"),
    (httpx.MockTransport(lambda request: httpx.Response(404)), NOT_SET_UP,
     "http://tts.example:8000/v1/health does not exist (HTTP 404): check VOICEBOT_HTTP_URL"),
])
async def test_admins_read_the_operator_detail_without_credentials(transport, told, detail):
    """The HTTP backend down or at a wrong path: the report names the host and the setting, never the URL's
    password or query."""
    settings = BackendSettings(_env_file=None, backend="http", http_url=SECRET_URL)  # type: ignore[call-arg]
    health = await check_health(HttpBackend(settings, transport=transport))
    [variant] = health.variants
    assert (variant.error, variant.detail) == (told, detail)
    assert health_fields(health) == [("Backend", f"unreachable: {told} ({detail})")]
    assert not any(secret in repr(health) for secret in ("hunter2", "k3y", "voicebot:"))


async def test_report_values_from_the_backend_are_redacted():
    backend = FakeBackend()
    backend.health_report = backend.health_report.model_copy(update={
        "model": "https://hf:hf_abcdefghijklmnopqrstuvwx@hub.example/qwen?token=t0ken",
        "fallback_reason": "OSError('https://u:pw1234@mirror.example/x?sig=abc failed')"})
    values = dict(health_fields(await check_health(backend)))
    assert values["Model"] == "https://hub.example/qwen"
    assert values["Fast engine"] == "off, running stock qwen-tts: OSError('https://mirror.example/x failed')"


async def test_hanging_and_broken_backends_are_reported_too():
    with capture_logs() as logs:
        health = await check_health(
            {"slow": NeverAnswers("slow"), "broken": FakeBackend(health_error=ZeroDivisionError("bug")),
             "unset": FakeBackend(health_error=BackendNotConfigured("VOICEBOT_HTTP_URL is not set.")),
             "fa2": FakeBackend("fa2")},
            timeout_s=0.05,
        )
    slow, broken, unset, fa2 = health.variants
    assert slow.error == "The backend did not answer the health check within 0.05 s."
    assert broken.error == "The health check failed unexpectedly; the admins have the log."
    assert unset.error == "VOICEBOT_HTTP_URL is not set."
    assert fa2.ok and not health.ok
    assert any(entry["event"] == "health.check_failed" and entry["variant"] == "broken" for entry in logs)
    labels = [label for label, _ in health_fields(health)]
    assert labels[:3] == ["Backend (slow)", "Backend (broken)", "Backend (unset)"]
    assert labels[3:] == [f"{label} (fa2)" for label in BACKEND_LABELS]


async def test_queue_statistics_appear_once_jobs_ran():
    queue = JobQueue(1, cooldown_s=0)
    backend = FakeBackend(audio_seconds=2.0, total_s=0.9)

    async def work(job):
        return await backend.clone(None)

    for user in ("a", "b"):
        job = await queue.submit(work, user_id=user, place="cli")
        await job.wait()
        async with job.delivering():
            pass
    failed = await queue.submit(work, user_id="c", place="cli")
    failed.mark_failed("upload refused.")

    values = dict(health_fields(await check_health(backend, queue)))
    assert values["Jobs"] == "2 done, 1 failed"
    assert values["Real-time factor"] == "p50 0.45, p95 0.45"
    assert values["Total time"].startswith("p50 ")


def test_admins_come_from_the_platform_or_the_settings():
    config = CommandSettings(_env_file=None, admin_user_ids=["discord:111", "U0ABC"])
    assert is_admin("discord:999", True, config)  # the platform says so (server admin)
    assert is_admin("discord:111", False, config)  # qualified entry
    assert is_admin("slack:U0ABC", False, config)  # bare entry matches any platform's id
    assert not is_admin("slack:111", False, config)
    assert not is_admin("discord:222", False, config)
    require_admin("discord:111", False, config)
    with pytest.raises(PermissionDenied, match="Only the bot's admins") as refused:
        require_admin("discord:222", False, config)
    assert refused.value.code == "permission_denied"
