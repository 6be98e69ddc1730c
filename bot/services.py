"""What every bot process builds first: the clone service over the configured backend.

Discord, Slack and the CLI share it, so a backend choice (`VOICEBOT_BACKEND`, Modal variants) means the same
thing in each of them.
"""

from __future__ import annotations

from backend.clients.base import BackendClient
from backend.clients.factory import create_backend
from backend.settings import BackendSettings
from commands.clone import CloneService
from commands.settings import CommandSettings


def build_service(backend_settings: BackendSettings | None = None,
                  command_settings: CommandSettings | None = None) -> CloneService:
    """The clone service: one client per configured Modal variant (users pick one), else the single backend."""
    backend_settings = backend_settings or BackendSettings()
    if backend_settings.backend == "modal":
        clients: dict[str, BackendClient] = {
            variant: create_backend(backend_settings, variant) for variant in backend_settings.modal_variants}
    else:
        clients = {backend_settings.backend: create_backend(backend_settings)}
    return CloneService(clients, command_settings or CommandSettings())
