"""The voice library's use cases, the same on every platform: save a voice once (with consent), speak with it by
name, list, inspect, rename and delete voices, block members, take down any member's voice (admins, in their own
workspace), read the audit trail, and forget a user.

Saving takes two steps, so that consent is given on a form the platform shows before anything is stored:

    pending = await library.prepare_save(member, "Narrator", "me", clip, "memo.m4a", None)   # every check
    # the adapter shows CONSENT_STATEMENT with confirm / cancel; on confirm:
    voice = await library.confirm_save(pending.id, member)

`prepare_save` refuses everything that can be refused before the form (the name, a block, the per-user count,
a taken name, the clip through the intake), so nobody confirms a save that then fails. The clip is stored only on
confirmation, as the WAV the intake made (content-addressed); a form left alone expires after 15 minutes.

`say` resolves the name (the member's own voice first, then the server's), reads the stored clip and submits an
ordinary clone job through `CloneService` (same limits, queue, progress and delivery as `/clone`). The clip sent
is byte for byte the stored one (the intake is idempotent on its own output), so the backend's voice-prompt cache,
keyed by the clip's hash, hits from the second use on ("Voice clone: ... (cached voice)"), and forget-me can name
the cache entries by the stored hashes. A voice deleted while a job that uses it waits in the queue does not stop
that job: its clip was read when it was accepted, and the user asked before the voice went.

Every method raises `VoicebotError` subclasses with messages for the user: `StorageUnavailable` when the
database fails (nothing was changed), `PermissionDenied` for what the member may not do.
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime

import structlog

from backend.errors import InvalidInput, VoicebotError
from backend.intake import check_size, read_reference
from backend.validation import check_text
from commands.audit_trail import AuditTrail
from commands.clone import CloneService
from commands.errors import PermissionDenied
from commands.forgetting import FORGET_TIMEOUT_S, ForgetMeReport, forget_cached
from commands.job_journal import current_origin, journaled_as
from commands.jobs import Job, ProgressCallback
from commands.pending_saves import (
    CONSENT_STATEMENT,
    CONSENT_VERSION,
    PENDING_TTL_S,
    PendingSave,
    PendingSaves,
    SaveExpired,
)
from commands.settings import CommandSettings
from commands.storage import Storage
from commands.storage.audit import AuditEntry
from commands.storage.errors import NameTaken, StorageUnavailable
from commands.storage.journal import JournalEntry
from commands.storage.voices import Consent, Member, NewVoice, Scope, Voice
from commands.undelivered import UndeliveredStore
from commands.voice_names import check_voice_name, name_key

log = structlog.get_logger(__name__)

SCOPES: tuple[Scope, ...] = ("me", "server")
MAX_LISTED = 100


class VoiceNotFound(InvalidInput):
    code = "voice_not_found"


class TooManyVoices(InvalidInput):
    code = "too_many_voices"


class Blocked(PermissionDenied):
    """An admin of this workspace stopped the member from saving or using voices."""

    code = "blocked"


class ClipMissing(VoicebotError):
    """The voice is recorded but its clip is not in the ClipStore (deleted, or a clips directory not shared
    between bot processes)."""

    code = "clip_missing"


BLOCKED = "A server admin has stopped you from saving or using voices here."
ADMINS_ONLY = "Only server admins can do that."


class VoiceLibrary:
    """One per process, over the process's `Storage` and `CloneService`."""

    CONSENT_STATEMENT = CONSENT_STATEMENT

    def __init__(self, storage: Storage, service: CloneService, settings: CommandSettings | None = None, *,
                 undelivered: UndeliveredStore | None = None) -> None:
        self.storage = storage
        self.service = service
        self.settings = settings or service.settings
        self.audit = AuditTrail(storage.audit, self.settings)
        self.undelivered = undelivered or UndeliveredStore(self.settings.undelivered_dir)
        self.pending = PendingSaves()

    # -- saving --------------------------------------------------------------------------------------------
    async def check_save(self, member: Member, name: str, scope: str, transcript: str | None = None, *,
                         clip_size: int | None = None) -> tuple[str, str, Scope, str | None]:
        """Every check of `prepare_save` that needs no clip (adapters call it before downloading one):
        (name, key, scope, transcript) or raise."""
        display, key = check_voice_name(name)
        if scope not in SCOPES:
            raise InvalidInput(f"Unknown scope {scope!r}: choose “me” or “server”.", code="bad_scope")
        if scope == "server" and not member.workspace_id:
            raise InvalidInput("Server voices can only be saved in a server.", code="bad_scope")
        if transcript is not None and transcript.strip():
            transcript = check_text(transcript, self.settings.max_transcript_chars, field="transcript")
        else:
            transcript = None
        if clip_size is not None:
            check_size(clip_size, self.settings.audio_limits)
        await self._check_not_blocked(member)
        await self._check_room(member)
        await self._check_name_free(member, display, key, scope)  # type: ignore[arg-type]
        return display, key, scope, transcript  # type: ignore[return-value]

    async def prepare_save(self, member: Member, name: str, scope: str, clip_bytes: bytes, filename: str | None,
                           transcript: str | None = None) -> PendingSave:
        """Check everything and normalise the clip; the save waits for `confirm_save` (15 minutes)."""
        display, key, checked_scope, transcript = await self.check_save(member, name, scope, transcript,
                                                                       clip_size=len(clip_bytes))
        clip = await asyncio.to_thread(read_reference, clip_bytes, self.settings.audio_limits, filename)
        pending = self.pending.open(member, display, key, checked_scope, clip.wav, clip.seconds, transcript)
        log.info("voice.save_prepared", pending_id=pending.id, user_id=member.key, name=display, scope=checked_scope)
        return pending

    async def confirm_save(self, pending_id: str, member: Member) -> Voice:
        """Store the voice with the member's consent; only the member who started the save, within 15 minutes."""
        pending = self.pending.take(pending_id, member)
        try:
            voice = await self._store(member, pending.name, pending.key, pending.scope, pending.wav,
                                      pending.transcript, pending.statement)
        except StorageUnavailable:  # nothing was saved: the same form can be confirmed again
            self.pending.put_back(pending)
            raise
        log.info("voice.saved", voice_id=voice.id, user_id=member.key, name=voice.name, scope=voice.scope,
                 clip_sha256=voice.clip_sha256, consent_version=CONSENT_VERSION)
        return voice

    async def save_with_consent(self, member: Member, name: str, scope: str, clip_wav: bytes,
                                transcript: str | None, statement: str) -> Voice:
        """Save at once a voice whose consent came with the request (the API's upload confirms `statement`):
        every check of `prepare_save`, then stored like a confirmed save. `clip_wav` is the intake's WAV
        (`read_reference`'s output), stored as it is."""
        display, key, checked_scope, transcript = await self.check_save(member, name, scope, transcript,
                                                                       clip_size=len(clip_wav))
        voice = await self._store(member, display, key, checked_scope, clip_wav, transcript, statement)
        log.info("voice.saved", voice_id=voice.id, user_id=member.key, name=voice.name, scope=voice.scope,
                 clip_sha256=voice.clip_sha256)
        return voice

    async def _store(self, member: Member, name: str, key: str, scope: Scope, wav: bytes, transcript: str | None,
                     statement: str) -> Voice:
        await self._check_not_blocked(member)
        await self._check_room(member)
        consent = Consent(statement, member.key, datetime.now(UTC))
        sha256 = await self.storage.clips.put(wav)
        try:
            return await self.storage.voices.add(NewVoice(name, key, member, scope, sha256, transcript, consent))
        except BaseException:
            await self._drop_clip_if_unused(sha256)
            raise

    def cancel_save(self, pending_id: str, member: Member) -> bool:
        """Drop a pending save (its own member only); False if there was none."""
        return self.pending.cancel(pending_id, member)

    # -- speaking ------------------------------------------------------------------------------------------
    async def say(self, member: Member, name: str, text: str, language: str | None = None, *, place: str,
                  on_progress: ProgressCallback | None = None, is_admin: bool = False,
                  channel_id: str | None = None) -> Job:
        """Queue a clone job with the saved voice `name` (own first, then the server's); raises like
        `CloneService.submit`, plus VoiceNotFound, Blocked, ClipMissing, StorageUnavailable. The job is audited
        when it ends (`channel_id`, or `place`, says where it was asked)."""
        await self.service.check_request(member.key, text, None, language, is_admin=is_admin)  # cheap ones first
        voice = await self.find(member, name)
        wav = await self.clip_of(member, voice)
        origin = current_origin()
        with journaled_as(replace(origin, voice_id=voice.id)) if origin is not None else nullcontext():
            job = await self.service.submit(member.key, place, wav, f"{voice.name}.wav", text, voice.transcript,
                                            language, is_admin=is_admin, on_progress=on_progress,
                                            remember_clip=False)
        await self.record_say(job, member, channel_id or place, voice)
        return job

    async def record_say(self, job: Job, member: Member, channel_id: str, voice: Voice) -> None:
        """Audit a job spoken with a saved voice when it ends, and count the voice's use (`say`, and the API's
        jobs, whose clip came from the same library)."""
        self.audit.watch(job, member, channel_id, kind="say", voice=voice)
        try:
            await self.storage.voices.mark_used(voice.id, datetime.now(UTC))
        except StorageUnavailable as exc:  # a usage count is not worth failing an accepted job
            log.warning("voice.mark_used_failed", voice_id=voice.id, detail=exc.operator_text)

    async def check_may_use_voices(self, member: Member) -> None:
        """Blocked when an admin of the member's workspace stopped them from saving or using voices."""
        await self._check_not_blocked(member)

    async def clip_of(self, member: Member, voice: Voice) -> bytes:
        """The stored clip `member` speaks `voice` with; Blocked when an admin stopped them, ClipMissing when the
        clip is gone."""
        await self._check_not_blocked(member)
        try:
            wav = await self.storage.clips.get(voice.clip_sha256)
        except LookupError:
            raise ClipMissing(f"The reference clip of the voice “{voice.name}” is missing; save the voice again.",
                              detail=f"clip {voice.clip_sha256} of voice {voice.id} is not in the clip store "
                                     f"({self.settings.data_dir / 'clips'})") from None
        return wav

    def record_clone(self, job: Job, member: Member, channel_id: str) -> None:
        """Audit a one-off `/clone` job when it ends (adapters call this right after `CloneService.submit`)."""
        self.audit.watch(job, member, channel_id, kind="clone")

    async def record_resumed(self, job: Job, entry: JournalEntry) -> None:
        """Audit a job a restarted process took over from the journal (`commands.job_journal`) when it ends,
        as the `/clone` or `/say` job it continues (the suspended one was audited as "suspended")."""
        voice = None
        if entry.voice_id:
            try:
                voice = await self.storage.voices.get(entry.voice_id)
            except StorageUnavailable as exc:
                log.warning("voice.lookup_failed", voice_id=entry.voice_id, detail=exc.operator_text)
        member = Member(entry.platform, entry.workspace_id, entry.user_id)
        self.audit.watch(job, member, job.place.rsplit("/", 1)[-1], kind="say" if entry.voice_id else "clone",
                         voice=voice)

    # -- reading -------------------------------------------------------------------------------------------
    async def find(self, member: Member, name: str) -> Voice:
        """The voice `member` means by `name`: their own first, then their server's; `VoiceNotFound` otherwise
        (also for another member's private voice: its existence is not revealed)."""
        voice = await self.storage.voices.resolve(member, name_key(name))
        if voice is None:
            raise VoiceNotFound(f"You have no voice called “{name_key(name) or name}”, and this server has none "
                                "either. /voice list shows the voices you can use.")
        return voice

    async def voices(self, member: Member) -> list[Voice]:
        """The member's own voices, then their server's."""
        return await self.storage.voices.visible_to(member, "", limit=MAX_LISTED)

    async def voices_of(self, admin: Member, owner_id: str, *, is_admin: bool) -> list[Voice]:
        """Every voice `owner_id` saved in the admin's workspace, private ones included, so an admin can find
        the name to take down (admins only: anyone else learns nothing about another member's voices)."""
        self._require_admin(admin, is_admin)
        owned = await self.storage.voices.owned_by(admin.platform, owner_id)
        return sorted((voice for voice in owned if voice.owner.workspace_id == admin.workspace_id),
                      key=lambda voice: (voice.scope != "me", voice.key))

    async def info(self, member: Member, name: str) -> Voice:
        return await self.find(member, name)

    async def autocomplete(self, member: Member, prefix: str, limit: int = 25, *, owner_id: str | None = None,
                           is_admin: bool = False) -> list[Voice]:
        """Voices whose name starts with what the member typed (with `owner_id`, an admin's takedown: that
        member's voices in the admin's workspace); empty, never an error, when storage fails or a non-admin
        names an owner: an autocomplete has no place to show one."""
        key = name_key(prefix)
        try:
            if owner_id is None:
                return await self.storage.voices.visible_to(member, key, limit=limit)
            voices = await self.voices_of(member, owner_id, is_admin=is_admin)
        except StorageUnavailable as exc:
            log.warning("voice.autocomplete_failed", detail=exc.operator_text)
            return []
        except VoicebotError:  # not an admin, or not in a server
            return []
        return [voice for voice in voices if voice.key.startswith(key)][:limit]

    # -- changing ------------------------------------------------------------------------------------------
    async def delete(self, member: Member, name: str, *, is_admin: bool = False,
                     owner_id: str | None = None) -> Voice:
        """Delete a voice its owner may delete, or (admins) any server voice of their workspace; its clip goes
        with its last voice, from storage and from the backend's voice cache.

        With `owner_id`, an admin's takedown: the voice `owner_id` saved under `name` in the admin's workspace,
        private ones included (those are hidden from `find`). Only admins may name an owner; anyone else gets
        `PermissionDenied` before any lookup, so the answer says nothing about that member's voices. The owner
        is not notified; the log records who took the voice down."""
        if owner_id is None:
            voice = await self.find(member, name)
            self._check_may_change(member, voice, is_admin)
        else:
            voice = await self._owned_in_workspace(member, owner_id, name, is_admin=is_admin)
        await self.storage.voices.delete(voice.id)
        if await self._drop_clip_if_unused(voice.clip_sha256):
            await forget_cached(self.service.variants, [voice.clip_sha256])
        log.info("voice.deleted", voice_id=voice.id, name=voice.name, scope=voice.scope, by=member.key,
                 owner=voice.owner.key, workspace_id=voice.owner.workspace_id, taken_down=voice.owner != member,
                 clip_sha256=voice.clip_sha256)
        return voice

    async def _owned_in_workspace(self, admin: Member, owner_id: str, name: str, *, is_admin: bool) -> Voice:
        """The voice `owner_id` saved as `name` in the admin's workspace (their private one first, as `find`
        resolves names); raises before looking when the caller is no admin."""
        key = name_key(name)
        for voice in await self.voices_of(admin, owner_id, is_admin=is_admin):
            if voice.key == key:
                return voice
        raise VoiceNotFound(f"That member has no voice called “{key or name}” in this server. /voice list with "
                            "the member shows their voices.")

    async def rename(self, member: Member, name: str, new_name: str, *, is_admin: bool = False) -> Voice:
        voice = await self.find(member, name)
        self._check_may_change(member, voice, is_admin)
        display, key = check_voice_name(new_name)
        if key != voice.key:
            await self._check_name_free(voice.owner, display, key, voice.scope)
        try:
            renamed = await self.storage.voices.rename(voice.id, display, key)
        except LookupError:
            raise VoiceNotFound(f"The voice “{voice.name}” was deleted meanwhile.") from None
        log.info("voice.renamed", voice_id=voice.id, old=voice.name, new=display, by=member.key)
        return renamed

    # -- admins --------------------------------------------------------------------------------------------
    async def block(self, admin: Member, user_id: str, *, is_admin: bool, reason: str = "") -> None:
        """Stop `user_id` from saving or using voices in the admin's workspace (their voices stay)."""
        self._require_admin(admin, is_admin)
        await self.storage.blocks.block(admin.platform, admin.workspace_id, user_id, by=admin.key, reason=reason)
        log.info("voice.user_blocked", workspace_id=admin.workspace_id, user_id=user_id, by=admin.key)

    async def unblock(self, admin: Member, user_id: str, *, is_admin: bool) -> bool:
        """False when the user was not blocked."""
        self._require_admin(admin, is_admin)
        removed = await self.storage.blocks.unblock(admin.platform, admin.workspace_id, user_id)
        log.info("voice.user_unblocked", workspace_id=admin.workspace_id, user_id=user_id, by=admin.key,
                 was_blocked=removed)
        return removed

    async def recent_activity(self, admin: Member, limit: int = 20, *, is_admin: bool,
                              user_id: str | None = None) -> list[AuditEntry]:
        """The newest clone and say jobs of the admin's workspace (one user's, with `user_id`)."""
        self._require_admin(admin, is_admin)
        return await self.audit.recent(admin, limit, user_id=user_id)

    # -- forgetting ----------------------------------------------------------------------------------------
    async def forget_me(self, member: Member) -> ForgetMeReport:
        """Delete everything the bot keeps about the member on this platform, in every workspace: their jobs
        in flight (cancelled first, so none writes anything afterwards), pending saves, voices, clips no other
        voice uses, audit and journal entries, undelivered results, and the backend's cached voice prompts of
        those clips. Blocks others placed on them stay (they are the admins' records)."""
        jobs = self.service.queue.jobs_of(member.key)
        for job in jobs:
            job.mark_failed(VoicebotError("it was cancelled: you asked the bot to forget you.", code="forgotten"))
        if self.service.journal is not None:  # their entries' last writes land before the storage forgets them
            await self.service.journal.settle([job.id for job in jobs], timeout=FORGET_TIMEOUT_S)
        await self.audit.settle(member.key)
        self.pending.forget(member.key)
        self.service.recent_clips.forget(member.key)
        owned = await self.storage.voices.owned_by(member.platform, member.user_id)
        stored = await self.storage.forget_user(member.platform, member.user_id)
        gone = sorted({voice.clip_sha256 for voice in owned} | set(stored.clip_sha256s))
        cached = await forget_cached(self.service.variants, gone) if gone else 0
        undelivered = await asyncio.to_thread(self.undelivered.forget_user, member.key)
        report = ForgetMeReport(
            voices=[voice.name for voice in owned], clips=stored.clips, audit_entries=stored.audit_entries,
            journal_entries=stored.journal_entries, jobs_cancelled=len(jobs), undelivered=undelivered,
            cached_voices=cached, api_keys=stored.api_keys,
        )
        log.info("voice.user_forgotten", user_id=member.key, voices=len(owned), clips=stored.clips,
                 audit_entries=stored.audit_entries, jobs_cancelled=len(jobs), undelivered=undelivered,
                 cached_voices=cached, api_keys=stored.api_keys)
        return report

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background work of the process: pruning the audit trail past its retention."""
        self.audit.start_pruning()

    async def aclose(self) -> None:
        """Write the audit records still pending and stop pruning (after the queue drained)."""
        await self.audit.aclose()

    # -- rules ---------------------------------------------------------------------------------------------
    async def _check_not_blocked(self, member: Member) -> None:
        if await self.storage.blocks.is_blocked(member):
            raise Blocked(BLOCKED)

    async def _check_room(self, member: Member) -> None:
        limit = self.settings.max_voices_per_user
        if await self.storage.voices.count_owned(member) >= limit:
            raise TooManyVoices(f"You already have {limit} saved voices here, the most one person may keep. "
                                "Delete one with /voice delete first.")

    async def _check_name_free(self, member: Member, display: str, key: str, scope: Scope) -> None:
        """Refuse a name the new voice would share with one where it would be visible (`voices.add` decides
        for good, against races)."""
        taken = [voice for voice in await self.storage.voices.visible_to(member, key, limit=MAX_LISTED)
                 if voice.key == key and voice.scope == scope
                 and (scope == "server" or voice.owner == member)]
        if taken:
            where = "You already have" if scope == "me" else "This server already has"
            raise NameTaken(f"{where} a voice called “{taken[0].name}”. Pick another name, or delete or rename "
                            "that one first.")

    def _check_may_change(self, member: Member, voice: Voice, is_admin: bool) -> None:
        if voice.owner == member:
            return
        if is_admin and voice.scope == "server" and voice.owner.platform == member.platform \
                and voice.owner.workspace_id == member.workspace_id and member.workspace_id:
            return
        raise PermissionDenied(f"The voice “{voice.name}” belongs to someone else; only its owner or a server admin "
                               "can change it.")

    def _require_admin(self, admin: Member, is_admin: bool) -> None:
        if not is_admin:
            raise PermissionDenied(ADMINS_ONLY)
        if not admin.workspace_id:
            raise InvalidInput("That works in a server only, not in direct messages.", code="not_in_server")

    async def _drop_clip_if_unused(self, sha256: str) -> bool:
        """Delete the clip when no voice uses it any more; True if it went."""
        if await self.storage.voices.references(sha256) == 0:
            return await self.storage.clips.delete(sha256)
        return False


# Re-exported: adapters import the consent wording and the form's type from here.
__all__ = ["CONSENT_STATEMENT", "PENDING_TTL_S", "Blocked", "ClipMissing", "PendingSave",
           "SaveExpired", "TooManyVoices", "VoiceLibrary", "VoiceNotFound"]
