"""Build the backend client the settings ask for.

Each client module is imported only when chosen, so a bot on the HTTP backend never imports Modal and none of
them imports torch until the local engine actually runs.
"""

from __future__ import annotations

from backend.clients.base import BackendClient
from backend.settings import BackendSettings


def create_backend(settings: BackendSettings, variant: str | None = None) -> BackendClient:
    """The client for `settings.backend`. `variant` picks the Modal class (default: the first of
    `settings.modal_variants`); the local and HTTP backends serve a single model and ignore it."""
    if settings.backend == "modal":
        from backend.clients.modal_client import ModalBackend

        return ModalBackend(settings, variant)
    if settings.backend == "http":
        from backend.clients.http_client import HttpBackend

        return HttpBackend(settings)
    from backend.clients.local import LocalBackend

    return LocalBackend(settings)
