"""Saves waiting for their consent: the statement the saver confirms, and the forms held until they answer.

A save is checked completely and its clip normalised before the consent form is shown, but nothing is stored
until the saver confirms. Until then the form lives here, in the process's memory: one per member (a new save
replaces the old one), for 15 minutes, and within a byte budget (each holds a normalised clip), so open forms
cannot exhaust memory. A restart drops them; the saver starts again.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from backend.errors import InvalidInput, VoicebotError
from commands.errors import PermissionDenied
from commands.storage.voices import Member, Scope

CONSENT_VERSION = 1
CONSENT_STATEMENT = (
    f"Voice consent v{CONSENT_VERSION}: The voice in this clip is my own, or the person it belongs to has agreed "
    "that I save it here and that whoever may use it on this bot can make it say new things. I will not use it "
    "to deceive, impersonate or harm anyone. I can delete it at any time."
)
PENDING_TTL_S = 15 * 60.0
# A clip is up to ~11 MiB once normalised (30 s at 192 kHz); past this many bytes in all, new saves are refused
# until some are confirmed, cancelled or expire.
MAX_PENDING_BYTES = 96 * 1024 * 1024


class SaveExpired(InvalidInput):
    code = "save_expired"


@dataclass(frozen=True)
class PendingSave:
    """A save waiting for its consent: everything checked, the clip normalised, nothing stored yet."""

    id: str
    member: Member
    name: str
    key: str
    scope: Scope
    wav: bytes
    seconds: float
    transcript: str | None
    statement: str
    expires_at: float  # time.monotonic()


class PendingSaves:
    """The open consent forms of one process."""

    def __init__(self) -> None:
        self._forms: dict[str, PendingSave] = {}

    def __len__(self) -> int:
        return len(self._forms)

    def open(self, member: Member, name: str, key: str, scope: Scope, wav: bytes, seconds: float,
             transcript: str | None) -> PendingSave:
        """A new form with the current statement; replaces the member's open one. Refused ("busy") past the
        byte budget."""
        now = time.monotonic()
        for form in list(self._forms.values()):
            if form.expires_at <= now or form.member == member:
                del self._forms[form.id]
        if sum(len(form.wav) for form in self._forms.values()) + len(wav) > MAX_PENDING_BYTES:
            raise VoicebotError("Too many voices are being saved right now; please try again in a few minutes.",
                                code="busy")
        form = PendingSave(secrets.token_urlsafe(12), member, name, key, scope, wav, seconds, transcript,
                           CONSENT_STATEMENT, now + PENDING_TTL_S)
        self._forms[form.id] = form
        return form

    def take(self, pending_id: str, member: Member) -> PendingSave:
        """The form, removed (so it is answered once); `SaveExpired` when gone or late, `PermissionDenied` for
        anyone but the saver (the form stays)."""
        form = self._forms.get(pending_id)
        if form is None or form.expires_at <= time.monotonic():
            self._forms.pop(pending_id, None)
            raise SaveExpired("This save has expired (forms last 15 minutes) or was already handled; "
                              "start it again.")
        if form.member != member:
            raise PermissionDenied("Only the person who started this save can confirm it.")
        return self._forms.pop(pending_id)

    def put_back(self, form: PendingSave) -> None:
        """A taken form whose save could not be stored (nothing changed): it can be confirmed again."""
        self._forms[form.id] = form

    def cancel(self, pending_id: str, member: Member) -> bool:
        """Drop the member's form; False if there was none."""
        form = self._forms.get(pending_id)
        if form is None or form.member != member:
            return False
        del self._forms[pending_id]
        return True

    def forget(self, member_key: str) -> None:
        """Drop every form of the user (forget-me), in every workspace."""
        for form in [form for form in self._forms.values() if form.member.key == member_key]:
            del self._forms[form.id]
