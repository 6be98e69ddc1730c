"""Logging for every process (bots, CLI, the GPU container), set up in one place.

structlog for our events and the same renderer for stdlib loggers (discord.py, slack-bolt, aiohttp, uvicorn,
FastAPI), so one line format reaches the console or a log collector. Two rules hold for every line:
tracebacks are plain (never rich or better-exceptions frames with local variables, which held bearer tokens,
user text and base64 clips), and every string goes through `backend.redaction.redact` last, so a secret that
slips into an event, an exception message or a library's line is masked before it is written.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog

from backend.redaction import redact_value

_HANDLER_NAME = "voicebot"


def redact_event(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: mask secrets in every value (the formatted traceback included)."""
    return {key: redact_value(value) for key, value in event.items()}


def setup_logging(level: str = "INFO", fmt: Literal["console", "json"] = "console") -> None:
    """Route structlog and stdlib logging through one redacting handler on stderr. Safe to call more than once."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,  # loggers created at import must follow a later reconfiguration
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # the traceback becomes a plain string here (no locals), so the redaction below sees all of it
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
    ))
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    root.setLevel(level)
    # uvicorn installs handlers of its own; send its lines through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "fastapi"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # httpx logs every request's full URL at INFO: redacted by the handler, but noise all the same.
    logging.getLogger("httpx").setLevel(max(logging.getLevelName(level), logging.WARNING))
    # discord.py logs every HTTP request at DEBUG and gateway chatter at INFO; keep ours readable.
    logging.getLogger("discord.http").setLevel(max(logging.getLevelName(level), logging.INFO))
    # qwen-tts imports `sox` for its 25 Hz tokenizer only (the 12 Hz models voicebot serves never call it); the
    # package warns at import when the sox binary is missing.
    logging.getLogger("sox").setLevel(logging.ERROR)
    # Database drivers log statements with their parameters at DEBUG (SQLAlchemy's engine at INFO): the job
    # journal's parameters include Discord interaction tokens, which only become known secrets once read back.
    for name in ("aiosqlite", "asyncpg", "sqlalchemy.engine", "sqlalchemy.pool"):
        logging.getLogger(name).setLevel(logging.WARNING)
