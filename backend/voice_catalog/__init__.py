"""Saved voices the HTTP API can speak with: the `VoiceCatalog` interface the web app is given, and the
directory that implements it (`directory.DirectoryVoiceCatalog`, on Modal a volume of its own)."""

from backend.voice_catalog.catalog import (
    CONSENT_ID,
    CONSENT_STATEMENT,
    CONSENT_VERSION,
    Consent,
    SavedVoice,
    VoiceCatalog,
    VoiceLimitReached,
    VoiceNameTaken,
    check_voice_name,
    voice_id,
)
from backend.voice_catalog.directory import DirectoryVoiceCatalog

__all__ = [
    "CONSENT_ID", "CONSENT_STATEMENT", "CONSENT_VERSION", "Consent", "DirectoryVoiceCatalog", "SavedVoice",
    "VoiceCatalog", "VoiceLimitReached", "VoiceNameTaken", "check_voice_name", "voice_id",
]
