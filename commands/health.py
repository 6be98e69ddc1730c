"""`/tts-health`: each backend variant's own report plus this process's queue, and who counts as an admin.

`check_health` never raises: an unreachable backend is part of the report, with the specific message and the
operator detail (which setting, which host), redacted: the report goes to admins only, but it is still shown in a
chat, so it never holds a credential or a URL's query.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from backend.clients.base import BackendClient
from backend.errors import VoicebotError
from backend.redaction import redact
from backend.schema import FastBatch, FastGraphs, HealthReport
from commands.errors import PermissionDenied
from commands.jobs import JobQueue, QueueStats
from commands.settings import CommandSettings
from commands.timing import Field, format_seconds
from commands.undelivered import UndeliveredResult

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class VariantHealth:
    """One backend variant: its report, or why there is none."""

    name: str
    report: HealthReport | None = None
    error: str | None = None
    error_code: str | None = None
    detail: str | None = None  # for admins: what to fix, redacted

    @property
    def problem(self) -> str | None:
        """The error as admins read it: the user's message, then the operator detail."""
        if self.error is None:
            return None
        return f"{self.error} ({self.detail})" if self.detail else self.error

    @property
    def ok(self) -> bool:
        return self.report is not None and self.report.status == "ok"


# Undelivered results listed by job in the report (the count covers all of them).
NEWEST_UNDELIVERED = 5


@dataclass(frozen=True)
class BotHealth:
    """`undelivered`: results no delivery route could hand over, newest first (from the adapter's
    `UndeliveredStore`), or None when the caller keeps none. Any of them needs an admin: the report says problems."""

    variants: list[VariantHealth]
    queue: QueueStats | None = None
    undelivered: list[UndeliveredResult] | None = None

    @property
    def ok(self) -> bool:
        return all(variant.ok for variant in self.variants) and not self.undelivered


async def check_health(
    backends: BackendClient | Mapping[str, BackendClient], queue: JobQueue | None = None, *, timeout_s: float = 30.0
) -> BotHealth:
    """Ask every variant at once (a Modal variant may have to start a container: give it `timeout_s`)."""
    named = dict(backends) if isinstance(backends, Mapping) else {backends.name: backends}
    variants = await asyncio.gather(*(_variant_health(name, client, timeout_s) for name, client in named.items()))
    return BotHealth(variants=list(variants), queue=queue.stats() if queue is not None else None)


async def _variant_health(name: str, client: BackendClient, timeout_s: float) -> VariantHealth:
    try:
        async with asyncio.timeout(timeout_s):
            report = await client.health()
    except TimeoutError:
        return VariantHealth(
            name, error=f"The backend did not answer the health check within {timeout_s:g} s.",
            error_code="backend_timeout",
        )
    except VoicebotError as exc:
        return VariantHealth(name, error=redact(exc.message), error_code=exc.code,
                             detail=redact(exc.detail) if exc.detail else None)
    except Exception:
        log.exception("health.check_failed", variant=name)
        return VariantHealth(
            name, error="The health check failed unexpectedly; the admins have the log.", error_code="unexpected"
        )
    return VariantHealth(name, report=report)


def health_fields(health: BotHealth) -> list[Field]:
    """Ordered (label, value) pairs: per variant (label suffixed with the name when there are several),
    then the bot's own uptime, queue and job statistics. Every backend value is redacted: a report's model path
    or fallback reason comes from the backend and may hold a URL."""
    several = len(health.variants) > 1
    fields: list[Field] = []
    for variant in health.variants:
        suffix = f" ({variant.name})" if several else ""
        fields += [(label + suffix, redact(value)) for label, value in _variant_fields(variant)]
    if health.queue is not None:
        fields += _queue_fields(health.queue)
    if health.undelivered is not None:
        fields += _undelivered_fields(health.undelivered)
    return fields


def _undelivered_fields(kept: list[UndeliveredResult]) -> list[Field]:
    """The count, where the files are, and the newest few: whose, where asked, when and why (redacted)."""
    if not kept:
        return [("Undelivered results", "none")]
    count = f"{len(kept)} kept in {kept[0].wav.parent}, newest first"
    newest = [
        f"{entry.job_id} ({entry.wav.name}) for {entry.user_id} in {entry.place}, "
        f"{datetime.datetime.fromtimestamp(entry.kept_at, datetime.UTC):%Y-%m-%d %H:%M} UTC: {entry.reason}"
        for entry in kept[:NEWEST_UNDELIVERED]
    ]
    return [("Undelivered results", redact(count)), ("Newest undelivered", redact("\n".join(newest)))]


def _graphs_text(graphs: FastGraphs) -> str:
    """Eager graphs serve at ~4x real time until their compiled ones are swapped in; a failed compile keeps one."""
    text = f"{graphs.compiled} compiled, {graphs.eager} eager"
    if graphs.capturing:
        text += " (compiling in the background)"
    failed = "; ".join(f"{shape}: {why}" for shape, why in graphs.failed.items())
    return f"{text}; failed: {failed}" if failed else text


def _batch_text(batch: FastBatch) -> str:
    """Requests waiting while rows are free would mean the loop is stuck; rows per step is how full it runs."""
    return (f"{batch.active} of {batch.max_batch} rows decoding, {batch.waiting} waiting; "
            f"{batch.frames:,} frames so far, {batch.rows_per_step:.1f} rows per step")


def _variant_fields(variant: VariantHealth) -> list[Field]:
    report = variant.report
    if report is None:
        return [("Backend", f"unreachable: {variant.problem}")]
    warmth = "warm" if report.warm else "cold (the first request loads the model and is slower)"
    fields: list[Field] = [
        ("Backend", f"{report.status}, {warmth}"),
        ("Model", report.model),
        ("Variant", f"{report.variant or variant.name} ({report.engine_mode})"),
        *([("Fast engine", f"off, running stock qwen-tts: {report.fallback_reason}")] if report.fallback_reason
          else []),
        ("GPU", report.gpu or report.device),
        ("Attention", f"{report.attention}, {report.dtype}"),
        *([("Fast graphs", _graphs_text(report.fast_graphs))] if report.fast_graphs is not None else []),
        *([("Continuous batch", _batch_text(report.fast_batch))] if report.fast_batch is not None else []),
    ]
    if report.gpu_memory is not None:
        memory = report.gpu_memory
        fields.append((
            "GPU memory",
            f"{memory.allocated_gb:.1f} of {memory.total_gb:.1f} GB allocated (peak {memory.peak_gb:.1f} GB)",
        ))
    cache = report.cache
    fields += [
        ("Voice cache", f"{cache.size} of {cache.capacity} voices, {cache.hits} hits, {cache.misses} misses"),
        ("Backend uptime", f"{format_seconds(report.uptime_s)}, {report.requests_served} requests, "
                           f"model loaded in {format_seconds(report.load_s)}"),
    ]
    if report.versions:
        fields.append(("Versions", ", ".join(f"{name} {version}" for name, version in report.versions.items())))
    return fields


def _queue_fields(stats: QueueStats) -> list[Field]:
    def pair(p50: float | None, p95: float | None, fmt) -> str:
        return "no jobs yet" if p50 is None else f"p50 {fmt(p50)}, p95 {fmt(p95)}"

    return [
        ("Bot uptime", format_seconds(stats.uptime_s)),
        ("Queue", f"{stats.queued} waiting (max {stats.max_queue}), "
                  f"{stats.running} of {stats.max_concurrent} running"),
        ("Jobs", f"{stats.done} done, {stats.failed} failed"),
        ("Total time", pair(stats.total_p50_s, stats.total_p95_s, format_seconds)),
        ("Queue wait", pair(stats.wait_p50_s, stats.wait_p95_s, format_seconds)),
        ("Real-time factor", pair(stats.rtf_p50, stats.rtf_p95, lambda value: f"{value:.2f}")),
    ]


def is_admin(user_id: str, platform_says_admin: bool, settings: CommandSettings) -> bool:
    """Admin when the platform says so (server/workspace admin, checked server side by the adapter) or when
    the id is in `settings.admin_user_ids`, written qualified ("discord:1234") or bare ("1234")."""
    if platform_says_admin:
        return True
    bare = user_id.split(":", 1)[1] if ":" in user_id else user_id
    return any(entry.strip() in (user_id, bare) for entry in settings.admin_user_ids)


def require_admin(user_id: str, platform_says_admin: bool, settings: CommandSettings) -> None:
    """Raise `PermissionDenied` unless `is_admin`."""
    if not is_admin(user_id, platform_says_admin, settings):
        raise PermissionDenied("Only the bot's admins can use this command.")
