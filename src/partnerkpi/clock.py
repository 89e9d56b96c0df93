"""The clock comes from outside: the real one here, a fixed one in tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock: now as a naive UTC datetime."""
    return datetime.now(UTC).replace(tzinfo=None)


class FixedClock:
    """A clock that stands still until moved by hand (`clock.now = ...`): for tests and replays."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now
