"""What every bot process builds first: the clone service over the configured backend, and the voice library
over the process's storage.

Discord, Slack and the CLI share them, so a backend choice (`VOICEBOT_BACKEND`, Modal variants) or a database
(`VOICEBOT_DATABASE_URL`, else SQLite under `VOICEBOT_DATA_DIR`) means the same thing in each of them. Building
the service also registers the backend's secrets with `backend.redaction`, so no log line, message or health
report of the process can show them, whatever shape they have (the storage registers the database password).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlsplit

from backend.clients.base import BackendClient
from backend.clients.factory import create_backend
from backend.redaction import register_secrets
from backend.settings import BackendSettings
from commands.clone import CloneService
from commands.settings import CommandSettings
from commands.storage.sql import open_storage
from commands.voice_library import VoiceLibrary


def backend_secrets(settings: BackendSettings) -> list[object]:
    """The HTTP token, the password and query values of VOICEBOT_HTTP_URL, and Modal's token (from its own
    environment variables or ~/.modal.toml) when the Modal backend is chosen."""
    secrets: list[object] = [settings.http_token]
    if settings.http_url:
        try:
            url = urlsplit(settings.http_url)
            secrets += [url.password, *(value for _, value in parse_qsl(url.query))]
        except ValueError:  # an unparsable URL: the HTTP client refuses it at once
            pass
    if settings.backend == "modal":
        from modal.config import config

        secrets += [config.get("token_id"), config.get("token_secret")]
    return secrets


def build_service(backend_settings: BackendSettings | None = None,
                  command_settings: CommandSettings | None = None) -> CloneService:
    """The clone service: one client per configured Modal variant (users pick one), else the single backend."""
    backend_settings = backend_settings or BackendSettings()
    register_secrets(backend_secrets(backend_settings))
    if backend_settings.backend == "modal":
        clients: dict[str, BackendClient] = {
            variant: create_backend(backend_settings, variant) for variant in backend_settings.modal_variants}
    else:
        clients = {backend_settings.backend: create_backend(backend_settings)}
    return CloneService(clients, command_settings or CommandSettings())


@asynccontextmanager
async def voice_library(service: CloneService) -> AsyncIterator[VoiceLibrary]:
    """The voice library on the configured storage (opened, migrated to the current schema), with its audit
    pruning running; on exit the audit records still pending are written, then the storage is closed. Enter it
    before the bot takes interactions and leave it after the job queue has drained. Raises `StorageUnavailable`
    (its detail says which database and why) when the database cannot be opened."""
    storage = await open_storage(service.settings)
    library = VoiceLibrary(storage, service, service.settings)
    library.start()
    try:
        yield library
    finally:
        try:
            await library.aclose()
        finally:
            await storage.close()
