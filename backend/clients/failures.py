"""What a failing backend call tells users, and what it keeps for operators.

The three clients (local, Modal, HTTP) word their failures here, so users on every platform read the same few
sentences: what happened and what they can do. The bots show `message` to anyone, so it never names a host, a
URL, a setting or a command to run; which setting, host, HTTP status or Modal error was at fault goes into
`detail`, which reaches only admins (`/tts-health`) and the logs, redacted.
"""

from __future__ import annotations

from backend.errors import BackendFailed, InvalidInput, VoicebotError

UNREACHABLE = "The voice service can't be reached right now; try again in a few minutes."
NOT_SET_UP = "The voice service isn't set up correctly right now; please tell the bot's admins."
TIMED_OUT = "The voice service took too long to answer; try again in a few minutes, or with a shorter text."
FAILED = "The voice service could not make this voice clone; try again in a few minutes."


def from_service(error: VoicebotError, where: str) -> VoicebotError:
    """An error the voice service itself reported (over HTTP, in a Modal reply, or raised by the local engine).

    Bad input is the user's to fix, so `InvalidInput` passes as is ("The reference clip is silent"). Anything
    else (a missing model, flash-attn not installed, the service shutting down, another server's error page) is
    the operators' problem: users get `FAILED`, operators the service's own words under `where` in `detail`.
    """
    if isinstance(error, InvalidInput):
        return error
    said = f"{error.message} ({error.detail})" if error.detail else error.message
    failure = BackendFailed(FAILED, code=error.code, detail=f"{where} reported {error.code}: {said}")
    failure.__cause__ = error
    return failure
