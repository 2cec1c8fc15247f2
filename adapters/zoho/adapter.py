"""The Zoho CRM adapter: the :class:`~connector.adapter.Adapter` protocol over pull, push and check."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

import requests

from adapters.zoho.client import ZohoClient, build_client
from adapters.zoho.errors import ZohoSetupError
from adapters.zoho.options import ZohoOptions
from adapters.zoho.pull import MAX_FIELDS, pull_deleted, pull_records, pull_users, request_fields
from adapters.zoho.push import create_call, update_call, upsert_call, write_records
from connector.adapter import AdapterContext, CheckResult, Cursor, DeletedPage, Page, PushResult
from connector.http import TransportError
from connector.store.schema import SYNCED_ENTITIES

#: A mapping's ``object`` that means the Users API rather than a module.
USERS = "users"


class ZohoAdapter:
    """One Zoho org as a source: entities and modules come from the mapping, the rest from options."""

    def __init__(self, context: AdapterContext, *, session: requests.Session | None = None) -> None:
        options = context.config.options
        if not isinstance(options, ZohoOptions):
            raise ZohoSetupError(f"source {context.name!r}: options are not Zoho options")
        self.options = options
        self._clock = context.clock
        self._modules: dict[str, tuple[str, list[str]]] = {}
        for entity, mapping in context.mappings.items():
            fields = request_fields(list(mapping.fetch_fields))
            if mapping.object != USERS and len(fields) > MAX_FIELDS:
                raise ZohoSetupError(
                    f"source {context.name!r}: the mapping of {entity!r} (module {mapping.object}) reads "
                    f"{len(fields)} fields, but Zoho returns at most {MAX_FIELDS} per request; "
                    f"drop some from its columns or `fields`: {', '.join(fields)}"
                )
            self._modules[entity] = (mapping.object, fields)
        self.client: ZohoClient = build_client(
            options,
            tokens=context.tokens,
            source=context.name,
            clock=context.clock,
            sleep=context.sleep,
            session=session,
        )

    @property
    def api_calls(self) -> int:
        return self.client.api_calls

    def entities(self) -> Sequence[str]:
        known = [e for e in SYNCED_ENTITIES if e in self._modules]
        return known + [e for e in self._modules if e not in known]

    def pull(self, entity: str, cursor: Cursor | None) -> Iterator[Page]:
        module, fields = self._modules[entity]
        if module == USERS:
            return pull_users(self.client)
        return pull_records(self.client, module, fields, cursor, timedelta(seconds=self.options.overlap_s))

    def deleted(self, entity: str, cursor: Cursor | None) -> Iterator[DeletedPage]:
        module, _ = self._modules[entity]
        if module == USERS:  # deactivated users come back with their status; there is no stream
            return iter(())
        overlap = timedelta(seconds=self.options.overlap_s)
        return pull_deleted(self.client, module, cursor, overlap, self._clock)

    def push(self, target: str, records: Sequence[Mapping[str, Any]]) -> list[PushResult]:
        """Upsert to module ``target``; ``write.duplicate_check_fields`` apply to ``write.module``,
        other modules use Zoho's own duplicate check (system key, then unique fields)."""
        write = self.options.write
        check_fields = write.duplicate_check_fields if target == write.module else []
        call = upsert_call(check_fields, write.trigger)
        return write_records(self.client, target, records, call, concurrency=self.options.concurrency)

    def create_records(self, module: str, records: Sequence[Mapping[str, Any]]) -> list[PushResult]:
        """Insert records (e.g. alert Tasks with Owner and Due_Date); never retried when the outcome
        is unknown, so a task is not created twice."""
        call = create_call(self.options.write.trigger)
        return write_records(self.client, module, records, call, concurrency=self.options.concurrency)

    def update_records(self, module: str, records: Sequence[Mapping[str, Any]]) -> list[PushResult]:
        """Update records by their ``id``."""
        call = update_call(self.options.write.trigger)
        return write_records(self.client, module, records, call, concurrency=self.options.concurrency)

    def check(self) -> CheckResult:
        """Reuse or refresh the token, then read the current user: one API call when a token is cached."""
        facts: dict[str, Any] = {"data_center": self.options.data_center}
        auth = self.client.auth
        try:
            token = auth.token()
            facts["api_domain"] = auth.api_domain()
            facts["token_refreshed"] = auth.refreshes > 0
            facts["token_expires_at"] = token.expires_at.isoformat()
            reply = self.client.get(USERS, {"type": "CurrentUser"})
        except TransportError as exc:
            return CheckResult(ok=False, detail=str(exc), api_calls=self.api_calls, facts=facts)
        users = reply.body.get("users") if isinstance(reply.body, dict) else None
        user = users[0] if users else {}
        facts["user"] = user.get("full_name")
        facts["email"] = user.get("email")
        facts["profile"] = (user.get("profile") or {}).get("name")
        detail = f"connected to {facts['api_domain']} as {facts['user'] or 'an unnamed user'}"
        return CheckResult(ok=True, detail=detail, api_calls=self.api_calls, facts=facts)
