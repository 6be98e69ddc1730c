"""The audit trail's use cases: record every clone and say job when it ends, prune past the retention, and let
admins read their own workspace's recent activity.

A job is recorded when it ends (delivered or failed), not when it is accepted, so the entry says how it ended
and how much audio went out. The text is kept or only hashed (`VOICEBOT_AUDIT_TEXT`); the hash is always
stored, so an admin holding a suspicious clip's text can still match it. A record that cannot be written (the
database is down) is logged in full instead, at WARNING, so it is not lost without a trace.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Literal

import structlog

from commands.jobs import Job, JobStatus
from commands.settings import CommandSettings
from commands.storage.audit import AuditEntry, AuditLog
from commands.storage.errors import StorageUnavailable
from commands.storage.voices import Member, Voice

log = structlog.get_logger(__name__)

JobKind = Literal["clone", "say", "speak", "read"]  # speak and read: played into a voice channel
PRUNE_INTERVAL_S = 6 * 3600.0
MAX_ACTIVITY = 50  # entries one query shows: a chat message, not an export


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AuditTrail:
    """One per process, over the storage's `AuditLog`."""

    def __init__(self, audit: AuditLog, settings: CommandSettings) -> None:
        self.audit = audit
        self.settings = settings
        self._pending: dict[asyncio.Task[None], str] = {}  # record tasks -> the member key they record
        self._pruner: asyncio.Task[None] | None = None

    # -- recording -----------------------------------------------------------------------------------------
    def watch(self, job: Job, member: Member, channel_id: str, *, kind: JobKind, voice: Voice | None = None) -> None:
        """Record `job` once it has ended (DONE or FAILED), in the background."""
        task = asyncio.get_running_loop().create_task(self._record_when_done(job, member, channel_id, kind, voice),
                                                      name=f"audit-{job.id}")
        self._pending[task] = member.key
        task.add_done_callback(self._pending.pop)

    async def _record_when_done(self, job: Job, member: Member, channel_id: str, kind: JobKind,
                                voice: Voice | None) -> None:
        status = await job.wait_finished()
        await self.record(member, channel_id, job.id, kind, voice, job.text,
                          outcome="done" if status is JobStatus.DONE else (job.error.code if job.error else "failed"),
                          audio_seconds=job.result.audio_seconds
                          if job.result is not None and status is JobStatus.DONE else 0.0)

    async def record(self, member: Member, channel_id: str, job_id: str, kind: JobKind, voice: Voice | None,
                     text: str, *, outcome: str, audio_seconds: float) -> None:
        """Record one generation that has ended (a job, or speech played into a voice channel)."""
        keep = self.settings.audit_text == "keep"
        entry = AuditEntry(
            at=datetime.now(UTC), platform=member.platform, workspace_id=member.workspace_id, channel_id=channel_id,
            user_id=member.user_id, job_id=job_id, kind=kind, voice_id=voice.id if voice else None,
            voice_name=voice.name if voice else None, text=text if keep else None, text_sha256=text_sha256(text),
            outcome=outcome, audio_seconds=audio_seconds,
        )
        try:
            await self.audit.record(entry)
        except StorageUnavailable as exc:
            log.warning("audit.not_recorded", entry=entry.__dict__ | {"at": entry.at.isoformat()},
                        detail=exc.operator_text)

    async def settle(self, member_key: str | None = None, timeout: float = 10.0) -> None:
        """Wait for the pending records (of one member: forget-me deletes what they are about to write)."""
        tasks = [task for task, key in self._pending.items() if member_key is None or key == member_key]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    # -- reading -------------------------------------------------------------------------------------------
    async def recent(self, member: Member, limit: int = 20, *, user_id: str | None = None) -> list[AuditEntry]:
        """The newest entries of `member`'s workspace (never another's), at most `MAX_ACTIVITY`."""
        return await self.audit.recent(member.platform, member.workspace_id, limit=max(1, min(limit, MAX_ACTIVITY)),
                                       user_id=user_id)

    # -- retention -----------------------------------------------------------------------------------------
    async def prune(self) -> int:
        """Delete entries older than the retention; how many went."""
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.audit_retention_days)
        removed = await self.audit.prune(cutoff)
        log.info("audit.pruned", removed=removed, older_than=cutoff.isoformat())
        return removed

    def start_pruning(self, interval_s: float = PRUNE_INTERVAL_S) -> None:
        """Prune now and every `interval_s` until `aclose` (a failed round is logged and retried next time)."""
        async def loop() -> None:
            while True:
                try:
                    await self.prune()
                except StorageUnavailable as exc:
                    log.warning("audit.prune_failed", detail=exc.operator_text)
                await asyncio.sleep(interval_s)

        if self._pruner is None:
            self._pruner = asyncio.get_running_loop().create_task(loop(), name="audit-pruning")

    async def aclose(self, timeout: float = 10.0) -> None:
        """Stop pruning and write the records still pending (jobs end when the queue drains)."""
        if self._pruner is not None:
            self._pruner.cancel()
            await asyncio.gather(self._pruner, return_exceptions=True)
            self._pruner = None
        await self.settle(timeout=timeout)
