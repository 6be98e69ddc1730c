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
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from backend.clients.base import BackendClient
from backend.clients.factory import create_backend
from backend.redaction import register_secrets
from backend.settings import BackendSettings
from commands.clone import CloneService
from commands.job_journal import JobJournaling
from commands.jobs import JobQueue
from commands.settings import CommandSettings
from commands.storage import Storage
from commands.storage.limits import SharedLimits
from commands.storage.sql import open_storage
from commands.voice_library import VoiceLibrary


JOURNAL_FLUSH_S = 10.0  # the last journal writes of a stopping process (after the queue drained)


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
                  command_settings: CommandSettings | None = None, *,
                  limits: SharedLimits | None = None) -> CloneService:
    """The clone service: one client per configured Modal variant (users pick one), else the single backend.
    `limits`: the per-user limits to count against (the storage's, shared by every bot process on its
    database); without them this process counts on its own."""
    backend_settings = backend_settings or BackendSettings()
    command_settings = command_settings or CommandSettings()
    register_secrets(backend_secrets(backend_settings))
    if backend_settings.backend == "modal":
        clients: dict[str, BackendClient] = {
            variant: create_backend(backend_settings, variant) for variant in backend_settings.modal_variants}
    else:
        clients = {backend_settings.backend: create_backend(backend_settings)}
    return CloneService(clients, command_settings, JobQueue.from_settings(command_settings, limits=limits))


@dataclass(frozen=True)
class BotServices:
    """What a bot process serves with: the clone service (counting against the database's shared limits) and
    the voice library on the same database."""

    clone: CloneService
    library: VoiceLibrary


@asynccontextmanager
async def open_services(backend_settings: BackendSettings | None = None,
                        command_settings: CommandSettings | None = None) -> AsyncIterator[BotServices]:
    """Open the storage (migrated to the current schema), then the clone service over it and the voice
    library. Enter it before the bot takes interactions; leave it after the job queue has drained (the
    runner's `serve` drains and closes the backends): pending audit records are written, then the storage is
    closed. Raises `StorageUnavailable` (its detail says which database and why) when the database cannot be
    opened."""
    command_settings = command_settings or CommandSettings()
    storage = await open_storage(command_settings)
    try:
        service = build_service(backend_settings, command_settings, limits=storage.limits)
        async with _library(storage, service) as library:
            yield BotServices(service, library)
    finally:
        await storage.close()


@asynccontextmanager
async def voice_library(service: CloneService) -> AsyncIterator[VoiceLibrary]:
    """A voice library for an existing clone service (tests, tools), on the storage its settings name. The
    service keeps its own per-user limits: a bot process uses `open_services`, which shares them."""
    storage = await open_storage(service.settings)
    try:
        async with _library(storage, service) as library:
            yield library
    finally:
        await storage.close()


@asynccontextmanager
async def _library(storage: Storage, service: CloneService) -> AsyncIterator[VoiceLibrary]:
    """The library with its audit pruning running, and the service's jobs journaled on the same storage; on
    exit the audit records and journal writes still pending are written."""
    journal = JobJournaling(storage)
    service.use_journal(journal)
    library = VoiceLibrary(storage, service, service.settings)
    library.start()
    try:
        yield library
    finally:
        await library.aclose()
        await journal.flush(timeout=JOURNAL_FLUSH_S)
