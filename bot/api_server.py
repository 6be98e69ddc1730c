"""`voicebot serve-api`: the OpenAI-compatible audio API on the bots' voice library, next to the bots.

The backend's app (`backend.openai_api`) served behind the backend web app's own edge (`backend.web.guard`:
the caller checked before any body is read, the declared-size guard, the error shapes), with two things of
the bots': who a request comes from is the member a per-member API key belongs to (`commands.api_keys`,
looked up by the key's digest on the bots' database), and the voices and audio are the bots'
(`commands.api_voices`, `commands.api_speech`): the same library, limits, audit trail and backend client
(`bot.services`: Modal, HTTP or local), so the API is a gateway to the engine the bots use, not a second one.

Closed by default: it refuses to start without the API's public URL (no member could hold a key) and without
storage (`StorageUnavailable`), and binds 127.0.0.1 unless told otherwise (a TLS proxy in front publishes it).
With a remote backend the process never imports torch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from starlette.authentication import AuthCredentials, AuthenticationBackend
from starlette.requests import HTTPConnection

from backend.errors import VoicebotError
from backend.log_setup import setup_logging
from backend.openai_api import PREFIX, body_limits, create_openai_app
from backend.settings import BackendSettings
from backend.web import CallerRefused, guard
from bot.services import open_services
from bot.settings import BotSettings
from commands.api_keys import ApiKeys, KeyHolder, KeyRefused, NoApi, key_from_header
from commands.api_speech import ApiSpeech
from commands.api_voices import LibraryVoiceCatalog
from commands.clone import CloneService
from commands.settings import CommandSettings
from commands.storage.errors import StorageUnavailable
from commands.voice_library import VoiceLibrary

log = structlog.get_logger(__name__)

# The bots' errors the API answers with a status of their own (the rest: `backend.openai_api.errors`).
STATUSES = {"cooldown": 429, "too_many_jobs": 429, "queue_full": 429, "busy": 429, "blocked": 403,
            "permission_denied": 403, "too_many_voices": 403, "name_taken": 409, "storage_unavailable": 503,
            "restarting": 503, "clip_missing": 410}
NO_API_DETAIL = "set VOICEBOT_API_PUBLIC_URL to where members reach this API (behind your HTTPS proxy)"


class ApiKeyAuthentication(AuthenticationBackend):
    """Every request needs `Authorization: Bearer vb_…`, a key `/voice api-key` issued and not revoked, of a
    member not blocked: 401 otherwise (403 when blocked, 503 when the database cannot say)."""

    def __init__(self, keys: ApiKeys) -> None:
        self.keys = keys

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, KeyHolder]:
        key = key_from_header(conn.headers.get("authorization", ""))
        try:
            holder = await self.keys.holder(key)
        except KeyRefused as exc:
            raise CallerRefused(exc.message) from None
        except StorageUnavailable as exc:
            raise CallerRefused(exc.message, status=503, code=exc.code) from None
        except VoicebotError as exc:  # Blocked: a known member who may not use voices here
            raise CallerRefused(exc.message, status=403, code=exc.code) from None
        return AuthCredentials(["authenticated"]), holder


def create_api_app(service: CloneService, library: VoiceLibrary, keys: ApiKeys) -> FastAPI:
    """The app `serve-api` serves: the OpenAI-compatible routes under `PREFIX`, on the bots' services."""
    settings = library.settings
    app = FastAPI(title="voicebot API", docs_url=None, redoc_url=None, openapi_url=None)
    guard(app, body_limits=body_limits(settings.audio_limits, settings.max_text_chars),
          authentication=ApiKeyAuthentication(keys))
    app.mount(PREFIX, create_openai_app(ApiSpeech(service, library), voices=LibraryVoiceCatalog(library),
                                        audio_limits=settings.audio_limits, max_text_chars=settings.max_text_chars,
                                        statuses=STATUSES))
    return app


@asynccontextmanager
async def api_app(backend_settings: BackendSettings | None = None,
                  command_settings: CommandSettings | None = None, *, grace_s: float = 60.0
                  ) -> AsyncIterator[FastAPI]:
    """The app on freshly opened services (storage migrated, backend client built); on exit the jobs in flight
    get `grace_s` to finish, then everything is closed. `NoApi` when no public URL is configured;
    `StorageUnavailable` when the database cannot be opened."""
    command_settings = command_settings or CommandSettings()
    if not command_settings.api_public_url:
        raise NoApi("The API is closed.", detail=NO_API_DETAIL)
    async with open_services(backend_settings, command_settings) as services:
        keys = ApiKeys(services.library.storage, command_settings)
        try:
            yield create_api_app(services.clone, services.library, keys)
        finally:
            await services.clone.queue.drain(timeout=grace_s)
            await services.clone.aclose()


def serve_api(host: str, port: int) -> None:
    """Run the API until SIGINT/SIGTERM (uvicorn stops taking requests; the jobs in flight get
    VOICEBOT_SHUTDOWN_GRACE_S to finish). Raises `VoicebotError` (`NoApi`, `StorageUnavailable`, a backend
    misconfiguration) when it cannot start."""
    import uvicorn

    bot_settings = BotSettings()
    setup_logging(bot_settings.log_level, bot_settings.log_format)

    async def serve() -> None:
        async with api_app(grace_s=bot_settings.shutdown_grace_s) as app:
            log.info("api.serving", host=host, port=port)
            config = uvicorn.Config(app, host=host, port=port, log_config=None, proxy_headers=True,
                                    server_header=False)
            await uvicorn.Server(config).serve()

    asyncio.run(serve())
