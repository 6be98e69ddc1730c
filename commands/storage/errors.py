"""Failures of the storage layer, in the stack's one error hierarchy (`backend.errors.VoicebotError`)."""

from __future__ import annotations

from backend.errors import InvalidInput, VoicebotError


class StorageUnavailable(VoicebotError):
    """The database cannot be reached, is locked past the deadline, or refused the statement for a reason that
    is not the user's. The message tells the user nothing was changed; `detail` (redacted URL, driver error)
    reaches only admins and logs."""

    code = "storage_unavailable"

    MESSAGE = "The bot cannot reach its storage right now; nothing was changed. Please try again in a minute."

    def __init__(self, message: str = MESSAGE, *, code: str | None = None, detail: str | None = None) -> None:
        super().__init__(message, code=code, detail=detail)


class NameTaken(InvalidInput):
    """A voice of that name already exists where the new one would be visible (the owner's own voices, or the
    server's)."""

    code = "name_taken"
