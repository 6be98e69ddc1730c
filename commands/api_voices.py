"""The bots' voice library as the OpenAI-compatible API's `VoiceCatalog` (`voicebot serve-api`): a key's holder
sees exactly what they may use with `/say`, saves voices as their own, and deletes what `/voice delete` lets
them delete.

- Listing: the holder's own voices, then their server's (`VoiceLibrary.voices`'s order). A server voice whose
  name one of their own voices shadows is left out: `/say` with that name speaks the holder's own, so would a
  request, and a listed voice must be usable by what the list gives.
- Ids: a voice's `id` is its name's key (`commands.voice_names`: NFKC, case-folded, single spaces), not an
  ASCII slug. Library names may hold any letter, spaces and `-_.'`; a slug would make "Zoë" and "Zoe" one id
  and leave one of them unreachable. Any string is a valid `voice` in a JSON body and in a path (the SDK
  percent-encodes it), and a request may name a voice by its id or by its name in any case, as `/say` does.
- Saving: the library's own checks (name rule, per-user limit, block, name taken), then stored as the holder's
  "me" voice with the API's consent statement verbatim, tagged with its id and version
  (`[voicebot-voice-consent-v1] …`), who confirmed it (the member) and when, as the bots store theirs.
- Clips: the stored WAV byte for byte, so the backend's voice-prompt cache (keyed by its hash) hits.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.voice_catalog import CONSENT_ID, CONSENT_VERSION, Caller, Consent, SavedVoice
from commands.api_keys import KeyHolder
from commands.errors import PermissionDenied
from commands.pending_saves import CONSENT_VERSION as BOT_CONSENT_VERSION
from commands.storage.voices import Member, Voice
from commands.voice_library import VoiceLibrary, VoiceNotFound
from commands.voice_names import check_voice_name

API_CONSENT_TAG = f"[{CONSENT_ID}] "
BOT_CONSENT_ID = f"voicebot-bot-consent-v{BOT_CONSENT_VERSION}"


@dataclass(frozen=True)
class LibraryVoice(SavedVoice):
    """A library voice as the API lists it, with the record it came from and who it was found for (the audit
    trail names the record; the clip is read as that member may read it)."""

    record: Voice
    holder: Member


def api_consent(consent: Consent) -> str:
    """The statement a library record keeps for consent given through the API."""
    return f"[{consent.statement_id}] {consent.statement}"


def saved_voice(voice: Voice, holder: Member) -> LibraryVoice:
    statement = voice.consent.statement
    from_api = statement.startswith(API_CONSENT_TAG)
    consent = Consent(statement_id=CONSENT_ID if from_api else BOT_CONSENT_ID,
                      version=CONSENT_VERSION if from_api else BOT_CONSENT_VERSION,
                      statement=statement.removeprefix(API_CONSENT_TAG), confirmed_by=voice.consent.confirmed_by,
                      confirmed_at=voice.consent.confirmed_at)
    return LibraryVoice(id=voice.key, name=voice.name, created_at=voice.created_at, ref_text=voice.transcript,
                        clip_sha256=voice.clip_sha256, consent=consent, record=voice, holder=holder)


def member_of(caller: Caller) -> Member:
    """The member a request comes from; only callers the API-key authentication made are served."""
    if not isinstance(caller, KeyHolder):
        raise PermissionDenied("This API serves API keys only.")
    return caller.member


class LibraryVoiceCatalog:
    """`backend.voice_catalog.VoiceCatalog` over a `VoiceLibrary`, for callers holding an API key."""

    def __init__(self, library: VoiceLibrary) -> None:
        self.library = library

    def check_name(self, name: str) -> str:
        return check_voice_name(name)[0]

    async def list(self, caller: Caller) -> list[SavedVoice]:
        member = member_of(caller)
        seen: set[str] = set()
        listed: list[SavedVoice] = []
        for voice in await self.library.voices(member):  # own first: a server voice of a name taken is shadowed
            if voice.key not in seen:
                seen.add(voice.key)
                listed.append(saved_voice(voice, member))
        return listed

    async def find(self, caller: Caller, name: str) -> SavedVoice | None:
        member = member_of(caller)
        try:
            return saved_voice(await self.library.find(member, name), member)
        except VoiceNotFound:
            return None

    async def clip(self, voice: SavedVoice) -> bytes:
        if not isinstance(voice, LibraryVoice):
            raise TypeError("not a voice of this catalog")
        return await self.library.clip_of(voice.holder, voice.record)

    async def add(self, caller: Caller, name: str, clip_wav: bytes, ref_text: str | None,
                  consent: Consent) -> SavedVoice:
        member = member_of(caller)
        voice = await self.library.save_with_consent(member, name, "me", clip_wav, ref_text, api_consent(consent))
        return saved_voice(voice, member)

    async def delete(self, caller: Caller, name: str) -> SavedVoice | None:
        """What `/voice delete` lets a member delete: their own voices (someone else's server voice is
        `PermissionDenied`; API keys carry no admin rights)."""
        member = member_of(caller)
        try:
            return saved_voice(await self.library.delete(member, name), member)
        except VoiceNotFound:
            return None
