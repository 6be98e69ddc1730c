"""Saved voices the HTTP API can speak with: the `VoiceCatalog` interface the OpenAI-compatible app is given,
and the directory the backend keeps them in (`directory.DirectoryVoiceCatalog`, on Modal a volume of its own,
served through `ThreadedVoiceCatalog`)."""

from backend.voice_catalog.catalog import (
    CONSENT_ID,
    CONSENT_STATEMENT,
    CONSENT_VERSION,
    BlockingVoiceCatalog,
    Caller,
    Consent,
    SavedVoice,
    ThreadedVoiceCatalog,
    VoiceCatalog,
    VoiceLimitReached,
    VoiceNameTaken,
    check_voice_name,
    voice_id,
)
from backend.voice_catalog.directory import DirectoryVoiceCatalog

__all__ = [
    "CONSENT_ID", "CONSENT_STATEMENT", "CONSENT_VERSION", "BlockingVoiceCatalog", "Caller", "Consent",
    "DirectoryVoiceCatalog", "SavedVoice", "ThreadedVoiceCatalog", "VoiceCatalog", "VoiceLimitReached", "VoiceNameTaken", "check_voice_name", "voice_id",
]
