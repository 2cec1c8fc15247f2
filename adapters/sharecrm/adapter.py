"""The ShareCRM adapter: the :class:`~connector.adapter.Adapter` protocol over pull, push and check."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from adapters.sharecrm.client import ShareCrmClient, build_client, data_path
from adapters.sharecrm.errors import ShareCrmSetupError
from adapters.sharecrm.options import ShareCrmOptions
from adapters.sharecrm.pull import ID, MODIFIED, pull_deleted, pull_employees, pull_records, query_body
from adapters.sharecrm.push import Writer, record_key
from connector.adapter import AdapterContext, CheckResult, Cursor, DeletedPage, Page, PushResult
from connector.http import TransportError
from connector.store.schema import SYNCED_ENTITIES

#: A mapping's ``object`` that means the employee directory (``/cgi/user/list``), not a CRM object.
USERS = "users"


class ShareCrmAdapter:
    """One ShareCRM tenant as a source: objects come from the mapping, the rest from options."""

    def __init__(self, context: AdapterContext) -> None:
        options = context.config.options
        if not isinstance(options, ShareCrmOptions):
            raise ShareCrmSetupError(f"source {context.name!r}: options are not ShareCRM options")
        self.options = options
        self._clock = context.clock
        self._objects: dict[str, tuple[str, list[str]]] = {
            entity: (mapping.object, sorted({ID, MODIFIED, *mapping.fetch_fields}))
            for entity, mapping in context.mappings.items()
        }
        self._full_pull_ids: dict[str, frozenset[str]] = {}
        self.client: ShareCrmClient = build_client(
            options, tokens=context.tokens, source=context.name, clock=context.clock, sleep=context.sleep
        )
        write = options.write
        self.writer = Writer(self.client, frozenset(write.employee_fields), write.trigger_workflow)

    @property
    def api_calls(self) -> int:
        return self.client.api_calls

    @property
    def limiter_wait_s(self) -> float:
        """Seconds spent waiting for the per-endpoint limiter (the bench reports time without them)."""
        return self.client.limiter.waited_s

    def entities(self) -> Sequence[str]:
        known = [e for e in SYNCED_ENTITIES if e in self._objects]
        return known + [e for e in self._objects if e not in known]

    def pull(self, entity: str, cursor: Cursor | None) -> Iterator[Page]:
        api_name, projection = self._objects[entity]
        if api_name == USERS:
            return pull_employees(self.client, cursor, self._clock)
        return self._pull_object(entity, api_name, projection, cursor)

    def _pull_object(
        self, entity: str, api_name: str, projection: list[str], cursor: Cursor | None
    ) -> Iterator[Page]:
        self._full_pull_ids.pop(entity, None)
        seen: set[str] | None = set() if cursor is None else None  # only a pull from scratch sees every id
        yield from pull_records(
            self.client,
            api_name,
            projection,
            cursor,
            overlap=timedelta(seconds=self.options.overlap_s),
            page_size=self.options.page_size,
            clock=self._clock,
            seen_ids=seen,
        )
        if seen is not None:
            self._full_pull_ids[entity] = frozenset(seen)

    def deleted(self, entity: str, cursor: Cursor | None) -> Iterator[DeletedPage]:
        api_name, _ = self._objects[entity]
        if api_name == USERS:  # employees are stopped (isStop), not deleted
            return iter(())
        return pull_deleted(
            self.client,
            api_name,
            cursor,
            interval=timedelta(hours=self.options.id_scan_interval_hours),
            page_size=self.options.page_size,
            clock=self._clock,
            full_pull_ids=self._full_pull_ids.pop(entity, None),
        )

    def push(self, target: str, records: Sequence[Mapping[str, Any]]) -> list[PushResult]:
        """Write to object ``target``: by ``_id`` when a record has one; otherwise an upsert on
        ``write.key_fields`` for ``write.object``, and a plain create for other objects."""
        write = self.options.write
        key_fields = write.key_fields if target == write.object else []
        results = []
        for index, record in enumerate(records):
            key = record_key(record, key_fields, index)
            if record.get(ID):
                results.append(self.writer.update(target, record, key))
            elif key_fields:
                results.append(self.writer.upsert(target, record, key, key_fields))
            else:
                results.append(self.writer.create(target, record, key, []))
        return results

    def create_records(
        self, api_name: str, records: Sequence[Mapping[str, Any]], key_fields: Sequence[str] = ()
    ) -> list[PushResult]:
        """Create records (e.g. alert tasks). With ``key_fields`` (say, an alert fingerprint field) a
        create whose outcome is unknown is looked up before it is tried again, never duplicated."""
        return [
            self.writer.create(api_name, record, record_key(record, key_fields, i), key_fields)
            for i, record in enumerate(records)
        ]

    def update_records(self, api_name: str, records: Sequence[Mapping[str, Any]]) -> list[PushResult]:
        """Update records by their ``_id``."""
        return [self.writer.update(api_name, r, record_key(r, [], i)) for i, r in enumerate(records)]

    def check(self) -> CheckResult:
        """Reuse or renew the token, find the operator, and read one row as the operator."""
        facts: dict[str, Any] = {"base_url": self.options.base_url}
        auth = self.client.auth
        try:
            token = auth.token()
            facts["corp_id"] = token.extra.get("corp_id")
            facts["token_refreshed"] = auth.refreshes > 0
            facts["token_expires_at"] = token.expires_at.isoformat()
            facts["operator"] = auth.operator()
            probe = next((obj for obj, _ in self._objects.values() if obj != USERS), None)
            if probe is not None:
                self.client.post(data_path(probe, "query"), query_body(probe, [ID], 1, []))
                facts["probe_object"] = probe
        except (TransportError, ShareCrmSetupError) as exc:
            return CheckResult(ok=False, detail=str(exc), api_calls=self.api_calls, facts=facts)
        detail = f"connected to {self.options.base_url} (corp {facts['corp_id']}) as {facts['operator']}"
        return CheckResult(ok=True, detail=detail, api_calls=self.api_calls, facts=facts)
