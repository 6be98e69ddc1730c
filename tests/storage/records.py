"""Records the storage tests build: members, consent, voices, audit and journal entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from commands.storage.audit import AuditEntry
from commands.storage.journal import JournalEntry
from commands.storage.voices import Consent, Member, NewVoice, Scope

ALICE = Member("discord", "guild1", "111")
BOB = Member("discord", "guild1", "222")
ALICE_ELSEWHERE = Member("discord", "guild2", "111")
SLACK_ALICE = Member("slack", "T1", "111")  # the same id on another platform is another user
CLIP = "a" * 64
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def new_voice(name: str, owner: Member = ALICE, scope: Scope = "me", clip: str = CLIP) -> NewVoice:
    return NewVoice(name=name, key=name.casefold(), owner=owner, scope=scope, clip_sha256=clip, transcript=None,
                    consent=Consent("It is my own voice (v1).", owner.key, T0))


def audit_entry(member: Member = ALICE, *, at: datetime = T0, job_id: str = "JOB1", voice_id: str | None = None,
                text: str | None = "hello") -> AuditEntry:
    return AuditEntry(at=at, platform=member.platform, workspace_id=member.workspace_id, channel_id="c1",
                      user_id=member.user_id, job_id=job_id, kind="say" if voice_id else "clone", voice_id=voice_id,
                      voice_name="Narrator" if voice_id else None, text=text, text_sha256="f" * 64, outcome="done",
                      audio_seconds=1.5)


def journal_entry(job_id: str, member: Member = ALICE, *, clip: str = CLIP, minutes: int = 0) -> JournalEntry:
    return JournalEntry(job_id=job_id, platform=member.platform, workspace_id=member.workspace_id,
                        user_id=member.user_id, route={"channel": "c1", "token_expires": 123.5}, text="Hi",
                        language="English", clip_sha256=clip, transcript=None, voice_id=None, variant=None,
                        accepted_at=T0 + timedelta(minutes=minutes))


async def left_over(storage, platform: str = "discord") -> list[JournalEntry]:
    """What the next process takes over from the journal once `storage`'s process has shut down cleanly."""
    await storage.journal.release()
    return await storage.journal.unfinished(platform)
