"""The per-endpoint limiter: never more than N calls to one endpoint in any window, on an injected
clock, with the waiting accounted — alone and underneath the adapter (retries included)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import responses
from fake_time import FakeTime
from sharecrm_support import BASE, QUERY_URL, FakeObject, add_token, failure, make_adapter, rows, serve

from adapters.sharecrm.limiter import EndpointLimiter
from connector.clock import fixed_clock


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def most_in_any_window(stamps: list[float], window: float) -> int:
    """The most stamps within any closed window of ``window`` seconds (a server's strict reading)."""
    best, lo = 0, 0
    for hi, moment in enumerate(stamps):
        while moment - stamps[lo] > window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_a_window_holds_at_most_n_calls_per_endpoint(time: FakeTime) -> None:
    limiter = EndpointLimiter(100, 20.0, clock=time.clock, sleep=time.sleep)
    start = time.now
    stamps: dict[str, list[float]] = {"/q": [], "/u": []}
    waits: dict[str, float] = {"/q": 0.0, "/u": 0.0}
    for i in range(350):
        endpoint = "/q" if i % 7 else "/u"
        waits[endpoint] += limiter.acquire(endpoint)
        stamps[endpoint].append((time.now - start).total_seconds())
        limiter.done(endpoint)
        time.advance(0.01)  # each call takes 10 ms
    assert most_in_any_window(stamps["/q"], 20.0) == 100
    assert waits["/u"] == 0  # 50 calls: /u never waits, however busy /q is
    assert limiter.waited_s == waits["/q"] == pytest.approx(sum(time.sleeps))
    assert 36 < limiter.waited_s < 40  # /q's 300 calls span three windows, less the time calls took


def test_calls_are_counted_from_when_their_reply_arrived(time: FakeTime) -> None:
    """A slow reply keeps its call in the window longer, so the server never sees N + 1."""
    limiter = EndpointLimiter(2, 10.0, clock=time.clock, sleep=time.sleep)
    limiter.acquire("/q")
    time.advance(4)  # a 4 s request
    limiter.done("/q")
    limiter.acquire("/q")
    limiter.done("/q")
    waited = limiter.acquire("/q")
    assert waited == pytest.approx(10.001)  # until the first reply (t=4) is a window old


def test_a_clock_that_stands_still_does_not_block_forever() -> None:
    slept: list[float] = []
    limiter = EndpointLimiter(3, 20.0, clock=fixed_clock(FakeTime().now), sleep=slept.append)
    for _ in range(10):
        limiter.acquire("/q")
        limiter.done("/q")
    assert len(slept) == 3 and all(s == pytest.approx(20.001) for s in slept)


def test_bad_settings_are_refused(time: FakeTime) -> None:
    with pytest.raises(ValueError):
        EndpointLimiter(0, 20, clock=time.clock, sleep=time.sleep)


@responses.activate
def test_a_long_pull_stays_under_the_documented_limit(time: FakeTime) -> None:
    add_token()
    stamps: list[float] = []
    fake = FakeObject(rows(12_000))

    def stamped(request):  # type: ignore[no-untyped-def]
        stamps.append((time.now - start).total_seconds())
        time.advance(0.05)  # the server takes 50 ms
        return fake(request)

    start = time.now
    responses.add_callback(responses.POST, QUERY_URL, callback=stamped)
    adapter = make_adapter(time)
    count = sum(len(p.records) for p in adapter.pull("tickets", None))
    assert count == 12_000 and len(stamps) == 121
    assert most_in_any_window(stamps, 20.0) <= 100
    assert adapter.limiter_wait_s > 0 and adapter.limiter_wait_s == pytest.approx(sum(time.sleeps))
    assert time.now - start >= timedelta(seconds=20)  # 121 calls need more than one window


@responses.activate
def test_retries_pass_the_limiter_too(time: FakeTime) -> None:
    add_token()
    stamps: list[float] = []
    fake = FakeObject(rows(300))
    fake.before = lambda n: failure(-1) if n % 2 else None  # every other call fails once

    def stamped(request):  # type: ignore[no-untyped-def]
        stamps.append((time.now - start).total_seconds())
        return fake(request)

    start = time.now
    responses.add_callback(responses.POST, QUERY_URL, callback=stamped)
    adapter = make_adapter(time, rate_limit_calls=3, rate_limit_window_s=20)
    assert sum(len(p.records) for p in adapter.pull("tickets", None)) == 300
    assert len(stamps) == 8  # 4 pages, each tried twice
    assert most_in_any_window(stamps, 20.0) <= 3


@responses.activate
def test_endpoints_are_limited_separately(time: FakeTime) -> None:
    add_token()
    serve(FakeObject(rows(1)))
    responses.post(f"{BASE}/cgi/user/list", json={"errorCode": 0, "userList": []})
    responses.post(f"{BASE}/cgi/department/list", json={"errorCode": 0, "departments": []})
    adapter = make_adapter(time, rate_limit_calls=1, rate_limit_window_s=20)
    list(adapter.pull("tickets", None))
    list(adapter.pull("agents", None))
    assert time.sleeps == []  # token, query, user list, department list: one call each
    list(adapter.pull("tickets", None))
    assert len(time.sleeps) == 1
