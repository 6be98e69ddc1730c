"""Limits of the commands layer from the environment (prefix VOICEBOT_) or a `.env` file.

Example: VOICEBOT_MAX_CONCURRENT_JOBS=1 VOICEBOT_ADMIN_USER_IDS=discord:1234,slack:U0ABC
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit
from typing import Annotated, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from backend.intake import MIB, AudioLimits
from backend.validation import DEFAULT_MAX_TEXT_CHARS

LONG_TEXT_MAX_CHARS = 5000


class CommandSettings(BaseSettings):
    """How many clone jobs run at once, how often a user may start one, and what input is accepted."""

    model_config = SettingsConfigDict(env_prefix="VOICEBOT_", env_file=".env", env_ignore_empty=True, extra="ignore")

    # the job queue
    max_concurrent_jobs: int = Field(2, ge=1, description="Clone jobs sent to the backend at the same time")
    max_jobs_per_user: int = Field(2, ge=1, description="Jobs one user may have queued or running")
    cooldown_s: float = Field(10.0, ge=0, description="Seconds between two jobs of one user")
    max_queue: int = Field(50, ge=0, description="Jobs that may wait for a free slot")
    job_timeout_s: float = Field(600.0, gt=0, description="Limit on one backend call (queue wait not included)")
    progress_interval_s: float = Field(
        2.0, ge=0, description="Least seconds between two progress edits of one job for the queue's length or the "
        "generation's frames (new stages and queue places are shown at once)")
    # the input
    # Longer texts are generated as pieces side by side and joined (`commands.long_text`); the transcript of a
    # reference clip goes to the engine whole, so it keeps the engine's own limit.
    max_text_chars: int = Field(LONG_TEXT_MAX_CHARS, ge=1, description="Longest text to speak")
    max_transcript_chars: int = Field(DEFAULT_MAX_TEXT_CHARS, ge=1, description="Longest reference transcript")
    max_ref_mib: float = Field(10.0, gt=0, description="Largest reference clip upload")
    min_ref_seconds: float = Field(1.0, ge=0)
    max_ref_seconds: float = Field(30.0, gt=0)
    # where the bot keeps what must outlive a process: results no route could deliver, saved voices' clips and
    # (without VOICEBOT_DATABASE_URL) the SQLite database
    data_dir: Path = Field(default_factory=lambda: platformdirs.user_data_path("voicebot"))
    # the voice library, audit trail, job journal and shared limits (`commands.storage`)
    database_url: SecretStr | None = Field(
        None, description="postgresql://user:password@host/db to share one library and one set of limits between "
        "bot processes; unset: SQLite in <data_dir>/voicebot.db")
    database_timeout_s: float = Field(5.0, gt=0, description="Deadline of one database operation (a lock wait "
                                      "included); past it the user is told nothing was changed")
    audit_text: Literal["hash", "keep"] = Field("hash", description="Keep the spoken text in the audit trail, or "
                                                "only its SHA-256")
    audit_retention_days: int = Field(30, ge=1, description="Days an audit entry is kept")
    max_voices_per_user: int = Field(25, ge=1, description="Voices one member may save in one workspace")
    # the OpenAI-compatible API (`voicebot serve-api`): closed until its public URL is set, so no member holds a
    # key to an API nobody runs
    api_public_url: str | None = Field(
        None, description="https://tts.example.org: where members reach `voicebot serve-api` (what their SDK's "
        "base URL starts with); unset: /voice api-key issues no keys")
    # who may use admin commands besides those the platform calls admins ("discord:1234", "slack:U0ABC" or a bare id)
    admin_user_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        """Accept a JSON list or a comma/space separated string from the environment."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return [str(item) for item in json.loads(text)]
            return [part for part in text.replace(",", " ").split() if part]
        return value

    @field_validator("api_public_url", mode="before")
    @classmethod
    def _public_url(cls, value: object) -> object:
        """An http(s) URL without credentials, query or fragment (it is shown to members), trailing "/" and a
        "/v1" the operator may have added dropped; empty means unset."""
        if not isinstance(value, str):
            return value
        text = value.strip().rstrip("/")
        if not text:
            return None
        url = urlsplit(text)
        if url.scheme not in ("http", "https") or not url.hostname or url.username or url.password or url.query \
                or url.fragment:
            raise ValueError("VOICEBOT_API_PUBLIC_URL must be an http(s) URL without credentials, query or fragment")
        return text.removesuffix("/v1")

    @field_validator("database_url", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        """`VOICEBOT_DATABASE_URL=` (empty, as .env templates leave it) means SQLite, not a broken URL."""
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def undelivered_dir(self) -> Path:
        return self.data_dir / "undelivered"

    @property
    def audio_limits(self) -> AudioLimits:
        """The reference clip limits handed to `backend.intake.read_reference`."""
        return AudioLimits(
            max_bytes=int(self.max_ref_mib * MIB), min_seconds=self.min_ref_seconds, max_seconds=self.max_ref_seconds
        )
