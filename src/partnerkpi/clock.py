"""The clock comes from outside: the real one here, a fixed one in tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock: now as a naive UTC datetime."""
    return datetime.now(UTC).replace(tzinfo=None)
