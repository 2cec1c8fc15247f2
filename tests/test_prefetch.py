"""The read-ahead iterator the sync uses: order, errors, one item ahead at most, the two early ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from connector.prefetch import ReadAhead


class Source:
    """A generator-backed source that records how far it was read, where, and whether it was closed.

    With ``gate_at``, reading that item waits until the test opens the gate, so a test can act
    while the reader is provably in the middle of a read (a slow CRM request).
    """

    def __init__(
        self, items: list[object], fail_after: int | None = None, gate_at: int | None = None
    ) -> None:
        self.items, self.fail_after, self.gate_at = items, fail_after, gate_at
        self.produced = 0
        self.closed = threading.Event()
        self.reading_gated = threading.Event()
        self.gate = threading.Event()
        self.threads: set[str] = set()

    def __iter__(self) -> Iterator[object]:
        try:
            for item in self.items:
                self.threads.add(threading.current_thread().name)
                if self.fail_after is not None and self.produced == self.fail_after:
                    raise ConnectionError("the CRM went away")
                if self.produced == self.gate_at:
                    self.reading_gated.set()
                    assert self.gate.wait(timeout=10)
                self.produced += 1
                yield item
        finally:
            self.closed.set()


def reader_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


@pytest.mark.parametrize("threaded", [True, False])
def test_items_arrive_in_order(threaded: bool) -> None:
    source = Source(list(range(50)))
    assert list(ReadAhead(iter(source), name="reader", threaded=threaded)) == list(range(50))
    assert source.threads == ({"reader"} if threaded else {"MainThread"})
    assert source.closed.is_set()


@pytest.mark.parametrize("threaded", [True, False])
def test_an_error_arrives_after_the_items_before_it(threaded: bool) -> None:
    source = Source(["p1", "p2", "p3"], fail_after=2)
    taken = []
    with pytest.raises(ConnectionError, match="went away"):
        for item in ReadAhead(iter(source), threaded=threaded):
            taken.append(item)
    assert taken == ["p1", "p2"]  # the pages before the failure are handed over (and committed) first


def test_reads_at_most_two_items_ahead_of_the_consumer() -> None:
    source = Source(list(range(10)))
    with ReadAhead(iter(source)) as ahead:
        for taken in range(1, 11):
            next(ahead)
            # one item waits in the hand-off and the reader may hold the next one: never more
            assert source.produced <= taken + 2


def test_close_drops_what_was_read_and_stops_the_reader() -> None:
    source = Source(list(range(1_000)))
    ahead = ReadAhead(iter(source), name="early-close")
    assert next(ahead) == 0
    ahead.close()  # what the sync does when storing a page failed
    assert source.closed.is_set()
    assert source.produced <= 3
    assert not reader_threads("early-close")
    assert list(ahead) == []


def test_stop_reading_still_hands_over_the_item_being_read() -> None:
    """A stop request while a read is under way: that item still comes (and is committed), then
    the iteration ends without starting another read."""
    source = Source(list(range(10)), gate_at=2)
    with ReadAhead(iter(source), name="stopping") as ahead:
        assert next(ahead) == 0
        assert source.reading_gated.wait(timeout=10)  # item 1 waits in the hand-off, item 2 is being read
        ahead.stop_reading()
        source.gate.set()
        assert list(ahead) == [1, 2]
    assert source.produced == 3 and source.closed.is_set()
    assert not reader_threads("stopping")


def test_stop_reading_inline_ends_at_the_next_item() -> None:
    source = Source(list(range(10)))
    ahead = ReadAhead(iter(source), threaded=False)
    assert next(ahead) == 0
    ahead.stop_reading()
    assert list(ahead) == []
    assert source.produced == 1 and source.closed.is_set()


def test_an_empty_source_ends_at_once() -> None:
    assert list(ReadAhead(iter(Source([])))) == []
