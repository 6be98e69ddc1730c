"""What the storage tests share: one wall clock every simulated process reads."""

from __future__ import annotations

import pytest


class Clock:
    """The wall clock every process reads (hosts share it): tests move it instead of waiting."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
