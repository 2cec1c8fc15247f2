"""Client-side limiter: at most N calls per endpoint in any window of W seconds (ShareCRM: 100/20 s).

ShareCRM counts calls per interface (URL path) and answers 30004 past the limit, with no headers
saying how long to wait. Staying under the limit costs less than backing off after it: a back-off
waits a whole window, the limiter only until the oldest call leaves it.

Calls are stamped when their reply has arrived, not when they were sent. The server stamps a call
somewhere in between, so "send only once the oldest *completed* call is a full window old"
guarantees the server never sees more than N calls in any window, whatever the latency.

Time is the injected clock, but a clock that stands still (``CRM_CONNECTOR_NOW`` pins it for demos)
must not make the limiter wait forever: the limiter's time is whichever has moved further, the clock
or the sum of its own waits.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

import requests

MARGIN_S = 0.001


class EndpointLimiter:
    """A sliding window per endpoint path; ``waited_s`` is the total time spent waiting."""

    def __init__(
        self,
        calls: int,
        window_s: float,
        *,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
    ) -> None:
        if calls < 1 or window_s <= 0:
            raise ValueError("the limiter needs calls >= 1 and window_s > 0")
        self.calls = calls
        self.window_s = window_s
        self._clock = clock
        self._sleep = sleep
        self._origin = clock()
        self._lock = threading.Lock()
        self._stamps: dict[str, deque[float]] = {}
        self.waited_s = 0.0

    def _now(self) -> float:
        return max((self._clock() - self._origin).total_seconds(), self.waited_s)

    def acquire(self, endpoint: str) -> float:
        """Wait until a call to ``endpoint`` fits the window; returns the seconds waited."""
        waited = 0.0
        with self._lock:
            stamps = self._stamps.setdefault(endpoint, deque())
            while True:
                now = self._now()
                while stamps and stamps[0] <= now - self.window_s:
                    stamps.popleft()
                if len(stamps) < self.calls:
                    return waited
                # A hair past the window's end, so even a server that counts both ends sees N.
                pause = stamps[0] + self.window_s - now + MARGIN_S
                self._sleep(pause)
                self.waited_s += pause
                waited += pause

    def done(self, endpoint: str) -> None:
        """Stamp a finished call (failed ones too: the server counted them)."""
        with self._lock:
            self._stamps.setdefault(endpoint, deque()).append(self._now())


class LimitedSession(requests.Session):
    """A session whose every request — first tries, retries, token calls — passes the limiter.

    The shared transport takes a session, so limiting at this level covers the transport's own
    retries without a second retry loop.
    """

    def __init__(self, limiter: EndpointLimiter) -> None:
        super().__init__()
        self.limiter = limiter

    def request(
        self, method: str | bytes, url: str | bytes, *args: object, **kwargs: object
    ) -> requests.Response:  # type: ignore[override]
        endpoint = urlsplit(url if isinstance(url, str) else url.decode()).path
        self.limiter.acquire(endpoint)
        try:
            return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]
        finally:
            self.limiter.done(endpoint)
