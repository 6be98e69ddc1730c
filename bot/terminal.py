"""The terminal as a third frontend: one clone job through the same `commands` use case the bots run, with a
live status line while it moves and the bots' timing report as a table at the end.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.status import Status
from rich.table import Table

from commands.clone import CloneService
from commands.jobs import Job
from commands.timing import CONSENT_LINE, Field, job_timing_fields

CLI_USER = "cli:local"


@dataclass(frozen=True)
class CloneOrder:
    """What one terminal clone asks for: the clip's bytes (any supported format) and the texts."""

    reference: bytes
    reference_name: str | None
    text: str
    ref_text: str | None = None
    language: str | None = None
    variant: str | None = None
    seed: int | None = None


def clone_to_file(service: CloneService, order: CloneOrder, out: Path, console: Console) -> list[Field]:
    """Run one clone job with a status line, write the WAV to `out`, print and return the timing fields.

    Raises the job's `VoicebotError` (bad clip, backend down ...) for the caller to print.
    """
    with console.status("Checking the reference clip ...") as status:
        job = asyncio.run(_run(service, order, out, status))
    fields = job_timing_fields(job)
    console.print(timing_table(fields, title=f"Job {job.id}: {out}"))
    console.print(CONSENT_LINE, style="dim")
    return fields


async def _run(service: CloneService, order: CloneOrder, out: Path, status: Status) -> Job:
    def show(job: Job) -> None:
        status.update(f"{job.describe()} ...")

    try:
        job = await service.submit(
            CLI_USER, "terminal", order.reference, order.reference_name, order.text, order.ref_text,
            order.language, order.variant, on_progress=show, seed=order.seed, is_admin=True,
        )
        await service.wait(job)
        async with job.delivering() as result:
            await asyncio.to_thread(out.write_bytes, result.audio)
        return job
    finally:
        await service.aclose()


def timing_table(fields: list[Field], *, title: str) -> Table:
    """The bots' timing fields as a two-column table."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for label, value in fields:
        table.add_row(label, value)
    return table
