"""A logging handler that keeps ERROR records, so bot tests can assert that nothing unexpected was logged."""

from __future__ import annotations

import logging


class ErrorRecords(logging.Handler):
    """Collects ERROR records of one logger tree."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def describe(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.records]
