"""Forget-me in SQL: every record of one user of one platform, in every workspace, in one transaction; then
the clip files nothing uses any more.

Deleted: their voices, their API keys, their audit entries and journaled jobs, and the files of clips and kept results only
they used. Changed: audit entries of OTHER users' jobs that used one of their voices lose the voice's id and
name; blocks they made as an admin lose their name (the block stays). Kept: blocks on them, and their
`job_starts` rows (no content; they expire with the cooldown, and deleting them would lift the cooldown).
"""

from __future__ import annotations

from sqlalchemy import delete, select, update

from commands.storage import ForgetReport
from commands.storage.clip_files import FileClipStore
from commands.storage.sql.database import Database
from commands.storage.sql.tables import api_keys, audit_entries, blocks, journal, voices
from commands.storage.sql.voices import clip_references

FORGOTTEN = "forgotten"  # what a forgotten admin's blocks say in `blocked_by`


async def forget_user(database: Database, clips: FileClipStore, platform: str, user_id: str) -> ForgetReport:
    theirs = (voices.c.platform == platform) & (voices.c.owner_id == user_id)
    their_jobs = (journal.c.platform == platform) & (journal.c.user_id == user_id)
    async with database.transaction("forgetting a user") as connection:
        voice_rows = (await connection.execute(select(voices.c.id, voices.c.clip_sha256).where(theirs))).all()
        job_rows = (await connection.execute(
            select(journal.c.clip_sha256, journal.c.result_sha256).where(their_jobs))).all()
        voice_ids = [row.id for row in voice_rows]
        await connection.execute(update(audit_entries).where(
            audit_entries.c.platform == platform, audit_entries.c.voice_id.in_(voice_ids)
        ).values(voice_id=None, voice_name=None))
        audit = await connection.execute(delete(audit_entries).where(
            audit_entries.c.platform == platform, audit_entries.c.user_id == user_id))
        jobs = await connection.execute(delete(journal).where(their_jobs))
        gone = await connection.execute(delete(voices).where(theirs))
        keys = await connection.execute(delete(api_keys).where(
            api_keys.c.platform == platform, api_keys.c.user_id == user_id))
        blocks_made = await connection.execute(update(blocks).where(
            blocks.c.platform == platform, blocks.c.blocked_by == f"{platform}:{user_id}").values(blocked_by=FORGOTTEN))
        references = sorted({row.clip_sha256 for row in voice_rows} | {row.clip_sha256 for row in job_rows})
        unused = [sha for sha in references if await clip_references(connection, sha) == 0]
    results = {row.result_sha256 for row in job_rows if row.result_sha256}
    deleted = [sha for sha in [*unused, *sorted(results)] if await clips.delete(sha)]
    return ForgetReport(voices=gone.rowcount, clips=len(deleted), audit_entries=audit.rowcount,
                        journal_entries=jobs.rowcount, blocks_made=blocks_made.rowcount, api_keys=keys.rowcount,
                        clip_sha256s=tuple(references))
