"""Logging for every bot process, set up in one place: structlog for our events, the same renderer for stdlib
loggers (discord.py, slack-bolt, aiohttp), so one line format reaches the console or a log collector.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

_HANDLER_NAME = "voicebot"


def setup_logging(level: str = "INFO", fmt: Literal["console", "json"] = "console") -> None:
    """Route structlog and stdlib logging through one handler on stderr. Safe to call more than once."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # JSON needs tracebacks as a string field; the console renderer formats exc_info itself.
    render: list[structlog.types.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()] if fmt == "json"
        else [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(),
                                          # plain: rich tracebacks print local variables, tokens included
                                          exception_formatter=structlog.dev.plain_traceback)]
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
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
    ))
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    root.setLevel(level)
    # discord.py logs every HTTP request at DEBUG and gateway chatter at INFO; keep ours readable.
    logging.getLogger("discord.http").setLevel(max(logging.getLevelName(level), logging.INFO))
    # qwen-tts imports `sox` for its 25 Hz tokenizer only (the 12 Hz models voicebot serves never call it); the
    # package warns at import when the sox binary is missing.
    logging.getLogger("sox").setLevel(logging.ERROR)
