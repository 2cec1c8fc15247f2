"""The contract between the CRM-agnostic core and one CRM's adapter.

An adapter knows HTTP, auth, paging, rate limits, error codes and the CRM's write API. It yields raw
records page by page and never touches the store: the sync engine maps, stores and commits each page
together with the cursor the adapter handed back, so a crash loses at most the page in flight.

Cursors are small JSON-able dicts that only the adapter interprets. The engine stores the cursor of a
page in the same transaction as the page's rows, and passes the last stored cursor (or ``None`` for
a full sync) to the next ``pull``.

A registry maps a config ``kind`` to a factory, so a third CRM is one new module that calls
:func:`register`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

if TYPE_CHECKING:
    from connector.config import SourceConfig
    from connector.mapping import Mapping as EntityMapping
    from connector.store.tokens import TokenCache

Cursor = dict[str, Any]


@dataclass(frozen=True)
class Page:
    """One page of raw records, and the cursor that is safe to store once the page is committed."""

    records: list[dict[str, Any]]
    cursor: Cursor | None
    api_calls: int = 1


@dataclass(frozen=True)
class DeletedPage:
    """External ids the CRM reports deleted, when, and the cursor to store after marking them.

    ``complete_ids`` is set only by a full id scan: the complete set of ids that still exist, so the
    engine marks every stored id not in it as deleted (ShareCRM's hard deletes leave no trace).
    """

    deleted: list[tuple[str, datetime]]
    cursor: Cursor | None
    api_calls: int = 1
    complete_ids: frozenset[str] | None = None


@dataclass(frozen=True)
class PushResult:
    """The CRM's answer for one record of a write, in input order."""

    key: str
    ok: bool
    remote_id: str | None = None
    action: str | None = None  # insert | update | unchanged
    code: str | None = None  # the CRM's own result code (SUCCESS, INVALID_DATA, errorCode …)
    message: str | None = None
    retryable: bool = False


@dataclass(frozen=True)
class CheckResult:
    """What ``crm-connector check`` shows for one source."""

    ok: bool
    detail: str
    api_calls: int = 0
    facts: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class CallBudgetSpent(Protocol):
    """What an adapter raises when the CRM takes no more calls before ``resets_at`` (ShareCRM's
    daily quota, errorCode 30002).

    Nothing is wrong with the connector or its setup, and nothing can be done before the reset: the
    sync records the entity ``stopped`` with the message, starts none of the source's remaining
    entities, and the next run after the reset resumes from the stored cursors. It does not count as
    a failure towards ``/healthz``.
    """

    resets_at: datetime


class StopRequested(Exception):
    """A wait was cut short because a stop was requested (SIGTERM to ``run`` or ``sync``).

    The ``sleep`` an adapter is given (:attr:`AdapterContext.sleep`) raises it when a stop comes in
    while the adapter waits out a retry's backoff, a ``Retry-After`` or its rate limiter, so a
    stop never waits for those (minutes, at worst). The sync ends the entity ``stopped`` with the
    cursor at the last committed page; the next run asks for the page again.
    """


class Adapter(Protocol):
    """What the sync engine, the push planner and ``check`` need from a CRM."""

    def entities(self) -> Sequence[str]:
        """Canonical entities this source can sync, in the order they should be synced."""
        ...

    def pull(self, entity: str, cursor: Cursor | None) -> Iterator[Page]:
        """Pages of raw records changed since ``cursor`` (all records when it is ``None``)."""
        ...

    def deleted(self, entity: str, cursor: Cursor | None) -> Iterator[DeletedPage]:
        """Pages of records deleted since ``cursor``; may yield nothing if the CRM reports none."""
        ...

    def push(self, target: str, records: Sequence[Mapping[str, Any]]) -> list[PushResult]:
        """Write records to a CRM module/object; one result per record, in input order."""
        ...

    def check(self) -> CheckResult:
        """Test credentials and reachability with as few API calls as possible."""
        ...

    @property
    def api_calls(self) -> int:
        """API calls made so far by this adapter instance (token requests included)."""
        ...


@dataclass(frozen=True)
class AdapterContext:
    """Everything an adapter factory may use; built by the core from the config."""

    name: str
    config: SourceConfig
    base_dir: Path  # the config file's folder: relative paths in options resolve against it
    mappings: Mapping[str, EntityMapping]
    tokens: TokenCache
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]  # for every wait; may raise StopRequested (see there)


AdapterFactory = Callable[[AdapterContext], Adapter]


@dataclass(frozen=True)
class AdapterKind:
    """A registered CRM kind: how to build it, and the pydantic model of its own config keys."""

    factory: AdapterFactory
    options: type[BaseModel]
    bundled_mapping: str | None = None  # file name in mappings/, e.g. "zoho.toml"


_REGISTRY: dict[str, AdapterKind] = {}


def register(kind: str, entry: AdapterKind) -> None:
    """Make ``kind`` usable in ``[sources.<name>] kind = …``."""
    _REGISTRY[kind] = entry


def adapter_kinds() -> dict[str, AdapterKind]:
    """Every known kind. Imports the bundled adapters on first use, so they register themselves."""
    import adapters  # noqa: F401

    return dict(_REGISTRY)


def create_adapter(kind: str, context: AdapterContext) -> Adapter:
    """Build the adapter for a configured source."""
    kinds = adapter_kinds()
    if kind not in kinds:
        raise KeyError(f"unknown source kind {kind!r}; known: {', '.join(sorted(kinds))}")
    return kinds[kind].factory(context)
