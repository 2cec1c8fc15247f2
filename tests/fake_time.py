"""A clock and a sleep that share one fake "now": tests wait without waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeTime:
    """``clock()`` answers ``now``; ``sleep(s)`` records ``s`` and moves ``now`` forward by it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 10, 8, 1, 0, tzinfo=UTC)
        self.sleeps: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
