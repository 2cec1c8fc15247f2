"""Time as an injected dependency: tests pass a fixed clock; nothing reads the wall clock directly.

The CLI uses :func:`system_clock` unless ``CRM_CONNECTOR_NOW`` (ISO-8601 with offset) is set, which
lets end-to-end tests and demos pin "now" without touching the code under test.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> Clock:
    pinned = os.environ.get("CRM_CONNECTOR_NOW")
    if pinned:
        fixed = datetime.fromisoformat(pinned)
        if fixed.tzinfo is None:
            raise ValueError("CRM_CONNECTOR_NOW needs an offset, e.g. 2026-10-31T12:00:00+08:00")
        return lambda: fixed.astimezone(UTC)
    return lambda: datetime.now(UTC)


def fixed_clock(at: datetime) -> Clock:
    """A clock that always answers ``at``: for tests."""
    if at.tzinfo is None:
        raise ValueError("fixed_clock needs an aware datetime")
    return lambda: at.astimezone(UTC)
