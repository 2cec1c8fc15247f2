"""Reading the next page from the CRM while the current one is written to the store.

A sync alternates between waiting on the CRM (the request, the server's work, the transfer) and
working on the page it got (mapping, upserting, committing). Fetching page k+1 in a background
thread while page k is mapped and stored overlaps the two: a thread waiting on the network does not
hold the GIL. The thread only fetches and parses; mapping stays with the consumer, because a second
thread busy in Python would make the consumer queue for the GIL after every database call.

At most two pages are ahead of the consumer (one waiting in the hand-off, one being fetched), so
memory stays at a few pages, and the consumer still commits the pages in order with their cursors:
a crash loses at most the pages not yet committed, and the next run resumes from the last committed
cursor exactly as without read-ahead. An error raised while reading reaches the consumer where that
item would have come, so the items before it are committed first.

Two ways to end early. :meth:`ReadAhead.stop_reading` (a stop request such as SIGTERM) starts no
further read but still hands over what was already read or is being read, so that fetched work is
committed rather than thrown away. :meth:`ReadAhead.close` (the consumer failed or left) drops what
was read; both wait for the reader, so no request is running once the iterator has ended (the
adapter's HTTP session is not shared between threads). The wait is the request in flight, retries
included — as long as a stop arriving mid-request waited before there was a reader.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import suppress
from types import TracebackType
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_DONE = object()


class ReadAhead(Generic[T]):
    """Iterates ``items`` in order; with ``threaded`` a background thread reads ahead (two items at most).

    ``threaded=False`` gives the same interface without a thread, for callers whose resources may
    not be used from two threads (an in-memory SQLite store has a single shared connection).
    """

    def __init__(self, items: Iterator[T], *, name: str = "read-ahead", threaded: bool = True) -> None:
        self._items = items
        self._stop = threading.Event()
        self._ended = False
        self._handoff: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=1)
        self._reader: threading.Thread | None = None
        if threaded:
            self._reader = threading.Thread(target=self._read, name=name, daemon=True)
            self._reader.start()

    def _read(self) -> None:
        try:
            for item in self._items:
                self._handoff.put((item, None))  # blocks while the consumer still works on the previous one
                if self._stop.is_set():
                    break
            self._handoff.put((_DONE, None))
        except BaseException as exc:  # handed over and re-raised in the consumer's thread
            self._handoff.put((_DONE, exc))
        finally:
            self._close_items()  # a generator's own clean-up runs in the thread that ran it

    def _close_items(self) -> None:
        close = getattr(self._items, "close", None)
        if close is not None:
            close()

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._ended:
            raise StopIteration
        if self._reader is None:
            return self._next_inline()
        item, error = self._handoff.get()
        if error is not None or item is _DONE:
            self._ended = True
            self._reader.join()
            if error is not None:
                raise error
            raise StopIteration
        return item

    def _next_inline(self) -> T:
        if self._stop.is_set():
            self._ended = True
            self._close_items()
            raise StopIteration
        try:
            return next(self._items)
        except BaseException:
            self._ended = True
            raise

    def stop_reading(self) -> None:
        """Read no further item; what was already read (or is being read) still comes."""
        self._stop.set()

    def close(self) -> None:
        """End now: drop what was read ahead and wait until the reader has stopped."""
        self._stop.set()
        self._ended = True
        if self._reader is None:
            self._close_items()
            return
        while self._reader.is_alive():  # make room so a reader blocked on a full hand-off sees the stop
            with suppress(queue.Empty):
                self._handoff.get_nowait()
            self._reader.join(timeout=0.05)

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
