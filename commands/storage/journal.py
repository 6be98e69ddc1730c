"""The job journal: every accepted clone job is written down, so a restarted bot resumes what was queued and
delivers what finished, instead of asking users to send it again.

Each entry is held by the process running its job; with several bot processes on one database (Discord shards,
Slack replicas), a starting process takes over only what no live process holds.

`route` is what the adapter needs to deliver later (channel, thread, interaction and its expiry); it is the
adapter's JSON and opaque here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

JobState = Literal["queued", "running", "finished", "delivered", "failed"]


@dataclass(frozen=True)
class JournalEntry:
    job_id: str
    platform: str
    workspace_id: str
    user_id: str
    route: dict[str, object]
    text: str
    language: str
    clip_sha256: str  # the reference clip in the ClipStore
    transcript: str | None
    voice_id: str | None
    variant: str | None
    accepted_at: datetime
    state: JobState = "queued"
    result_sha256: str | None = None  # the finished WAV, kept in the ClipStore until delivered
    error: str | None = None


class JobJournal(Protocol):
    async def accept(self, entry: JournalEntry) -> None: ...

    async def update(self, job_id: str, state: JobState, *, result_sha256: str | None = None,
                     error: str | None = None) -> None: ...

    async def unfinished(self, platform: str) -> list[JournalEntry]:
        """Take over the platform's entries not yet delivered or failed that no live process runs (released by a
        clean shutdown, or left by a process that stopped renewing them), oldest first: what a starting process
        resumes. Each entry goes to one process only, however many start together."""

    async def release(self, job_ids: Sequence[str] | None = None) -> None:
        """This process no longer runs these jobs (None: all it holds): the next process to look takes their
        entries over at once, without waiting for their lease to go stale."""

    async def forget(self, job_id: str) -> None: ...
