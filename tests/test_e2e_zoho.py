"""End to end: the real ``crm-connector sync`` against the Zoho sandbox on 127.0.0.1, on SQLite and PostgreSQL.

A full sync reads a clinic with 6,000 contacts and 2,600 cases (past the 2,000-row discrete paging
limit, so page tokens carry the chains); the sandbox then advances — records are created, modified,
soft-deleted (recycle bin) and hard-deleted (purged) — and incremental syncs must leave the store
equal to the sandbox, record by record: same ids, same ``updated_at``, deletions marked. The
sandbox's counters prove the cost: the full sync makes exactly the minimal calls, an incremental one
makes calls in proportion to the change, a rerun with nothing changed one call per stream, and one
access token serves every CLI run (it is cached in the store). The same story with 429s, 500s,
dropped connections and token expiry switched on in the middle of the syncs ends in the same state.

Back-off waits are recorded instead of slept: the CLI builds its sources through
``connector.jobs.build_source``, which the ``waits`` fixture wraps to inject a sleep function.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from connector import jobs, runtime
from connector.cli import main
from connector.sandbox import generate_clinic, start_sandbox
from connector.sandbox.clinic import LIVE, Clinic, TruthRow
from connector.sandbox.server import Handler, Request, Response, Route, RunningSandbox
from connector.sandbox.zoho import MODULE_ENTITIES, ZohoApp, ZohoCredentials, zoho_id
from connector.store import open_store
from connector.store.schema import auth_tokens, contacts, tickets
from tests.e2e_support import TruthCheck, stored_rows

pytestmark = pytest.mark.slow

SOURCE = "zoho_e2e"
SEED = 20261102
NOW = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
#: Over 5,000 contacts, and cases past Zoho's 2,000-row discrete paging limit.
SIZE = {"agents": 30, "contacts": 6_000, "tickets": 2_600, "follow_ups": 1_200, "calls": 1_800, "surveys": 600}
MODULES = {entity: module for module, entity in MODULE_ENTITIES.items() if entity}
ENTITIES = ("agents", *MODULES)
PER_PAGE = 200
OVERLAP = timedelta(seconds=60)  # the zoho kind's default `overlap_s`
TOKEN = "POST /oauth/v2/token"
USERS = "GET /crm/v8/users"
CREDENTIALS = ZohoCredentials()
SECRETS = {
    "ZOHO_E2E_CLIENT_SECRET": CREDENTIALS.client_secret,
    "ZOHO_E2E_REFRESH_TOKEN": CREDENTIALS.refresh_token,
}
# The bundled mapping has no surveys module; a clinic adds its custom one like this.
MAPPING = """\
extends = "zoho"
[entities.surveys]
object = "Patient_Surveys"
[entities.surveys.columns]
external_id = "id"
updated_at = { path = "Modified_Time", transform = "iso_datetime" }
score = { path = "Score", transform = "int" }
submitted_at = { path = ["Submitted_Time", "Created_Time"], transform = "iso_datetime" }
comment = "Comment"
contact_id = "Contact_Name.id"
ticket_id = "Case.id"
owner_id = "Owner.id"
"""


def records(entity: str) -> str:
    return f"GET /crm/v8/{MODULES[entity]}"


def deleted(entity: str) -> str:
    return f"GET /crm/v8/{MODULES[entity]}/deleted"


def pages(n: int) -> int:
    """Calls needed to read ``n`` records (an empty answer is one call too)."""
    return max(1, math.ceil(n / PER_PAGE))


class MidSyncFaults:
    """The Zoho sandbox app, with faults that switch on once an endpoint has answered its n-th call.

    The sandbox's own switches fault "the next N calls", which would hit a sync's first request;
    this puts them in the middle of a sync, e.g. inside a page-token chain.
    """

    def __init__(self, app: ZohoApp) -> None:
        self._app = app
        self._plans: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._answered: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    def arm(self, endpoint: str, after: int, **faults: int) -> None:
        """Switch ``faults`` on after ``after`` more answered calls to ``endpoint``."""
        self._plans.setdefault(endpoint, []).append((self._answered[endpoint] + after, faults))

    def routes(self) -> list[Route]:
        return [replace(r, handler=self._watch(r.handler)) if r.data else r for r in self._app.routes()]

    def _watch(self, handler: Handler) -> Handler:
        def watched(request: Request) -> Response:
            response = handler(request)
            endpoint = f"{request.method} {request.path}"
            self._answered[endpoint] += 1
            for due, faults in self._plans.get(endpoint, []):
                if due == self._answered[endpoint]:
                    request.faults.configure(faults)
            return response

        return watched


@dataclass
class Zoho:
    """A running sandbox, its fault planner, and a config file whose source points at it."""

    sandbox: RunningSandbox
    faults: MidSyncFaults
    config: Path
    store_url: str
    check: TruthCheck

    @property
    def clinic(self) -> Clinic:
        return self.sandbox.clinic

    def sync(self) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
        """Run ``crm-connector --json sync``: the runs by entity, and the calls the sandbox received."""
        before = self.sandbox.counters.calls()
        result = CliRunner().invoke(
            main, ["--config", str(self.config), "--json", "sync"], env=SECRETS, catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        assert not any(secret in result.output for secret in SECRETS.values())
        runs = {run["entity"]: run for run in json.loads(result.output)}
        assert set(runs) == set(ENTITIES) and all(run["status"] == "success" for run in runs.values()), runs
        calls = {
            endpoint: n - before.get(endpoint, 0)
            for endpoint, n in self.sandbox.counters.calls().items()
            if n != before.get(endpoint, 0)
        }
        # The connector counts every attempt (failed ones and token calls too), as the CRM does.
        assert sum(run["api_calls"] for run in runs.values()) == sum(calls.values())
        return runs, calls

    def watermarks(self) -> dict[str, datetime]:
        """Per entity, the newest ``updated_at`` stored: the records cursor a sync leaves behind."""
        return {
            entity: max(row.updated_at for row in stored_rows(self.store_url, entity, SOURCE).values())
            for entity in MODULES
        }

    def tokens_issued(self) -> int:
        return int(self.sandbox.state()["tokens_issued"])


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Back-off waits the CLI's sync asked for, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(jobs, "build_source", functools.partial(runtime.build_source, sleep=recorded.append))
    return recorded


@pytest.fixture
def zoho(tmp_path: Path, db_url: str) -> Iterator[Zoho]:
    faults = MidSyncFaults(ZohoApp(generate_clinic(SEED, SIZE, now=NOW)))
    with start_sandbox(faults) as sandbox:  # type: ignore[arg-type]  # a delegating SandboxApp
        (tmp_path / "zoho_e2e.toml").write_text(MAPPING, encoding="utf-8")
        config = tmp_path / "connector.toml"
        config.write_text(
            f'[store]\nurl = "{db_url}"\n'
            '[clinic]\ntimezone = "Asia/Shanghai"\nlanguage = "en"\n'
            f"[sources.{SOURCE}]\n"
            'kind = "zoho"\n'
            'mapping = "zoho_e2e.toml"\n'
            f'accounts_url = "{sandbox.base_url}"\n'
            f'api_domain = "{sandbox.base_url}"\n'
            f'client_id = "{CREDENTIALS.client_id}"\n'
            'client_secret = "${ZOHO_E2E_CLIENT_SECRET}"\n'
            'refresh_token = "${ZOHO_E2E_REFRESH_TOKEN}"\n',
            encoding="utf-8",
        )
        assert not any(secret in config.read_text(encoding="utf-8") for secret in SECRETS.values())
        yield Zoho(sandbox, faults, config, db_url, TruthCheck(sandbox, db_url, SOURCE, ENTITIES))


def live_count(truth: Mapping[str, TruthRow]) -> int:
    return sum(1 for row in truth.values() if row.deleted is None)


def changed_since(truth: Mapping[str, TruthRow], since: datetime) -> int:
    """Live records an ``If-Modified-Since: since`` read returns (the sandbox compares strictly)."""
    return sum(1 for row in truth.values() if row.deleted is None and row.modified > since)


def deleted_since(truth: Mapping[str, TruthRow], since: datetime) -> int:
    return sum(1 for row in truth.values() if row.deleted and row.deleted_at and row.deleted_at > since)


def full_sync_minimum(zoho: Zoho) -> dict[str, int]:
    """One token, one call per 200 records per module, one (empty) deletions call per module."""
    calls = {TOKEN: 1, USERS: 1}
    for entity in MODULES:
        calls[records(entity)] = pages(live_count(zoho.sandbox.truth(entity)))
        calls[deleted(entity)] = 1
    return calls


def assert_content_follows_the_clinic(zoho: Zoho) -> None:
    """Beyond ids and times: changed contact details and ticket statuses reached the store."""
    store = open_store(zoho.store_url, upgrade=False)
    try:
        with store.connect() as conn:
            stored_contacts = {
                row.external_id: row
                for row in conn.execute(
                    sa.select(contacts.c.external_id, contacts.c.mobile, contacts.c.email, contacts.c.owner_id)
                )
            }
            stored_status = dict(conn.execute(sa.select(tickets.c.external_id, tickets.c.status)).tuples())
    finally:
        store.dispose()
    for person in zoho.clinic.contacts:
        if person.deleted == LIVE:
            row = stored_contacts[zoho_id("Contacts", person.key)]
            assert (row.mobile, row.email, row.owner_id) == (
                person.mobile,
                person.email,
                zoho_id("users", person.owner),
            ), person.key
    for ticket in zoho.clinic.tickets:
        if ticket.deleted == LIVE:
            # Zoho's Cases have no "resolved" status: the sandbox shows resolved ones as Closed.
            expected = "closed" if ticket.status == "resolved" else ticket.status
            assert stored_status[zoho_id("Cases", ticket.key)] == expected, ticket.key


def assert_token_cached_in_store(zoho: Zoho) -> None:
    store = open_store(zoho.store_url, upgrade=False)
    try:
        with store.connect() as conn:
            row = conn.execute(sa.select(auth_tokens).where(auth_tokens.c.source == SOURCE)).one()
    finally:
        store.dispose()
    assert row.expires_at > datetime.now(UTC) + timedelta(minutes=30)


def test_full_then_incremental_syncs_mirror_the_sandbox_at_minimal_cost(zoho: Zoho, waits: list[float]) -> None:
    runs, calls = zoho.sync()
    assert runs["contacts"]["fetched"] >= 5_000 and runs["tickets"]["fetched"] > 2_000
    assert calls == full_sync_minimum(zoho)
    compared = zoho.check.assert_equal()
    assert compared["contacts"] == SIZE["contacts"] and compared["surveys"] == SIZE["surveys"]

    for share, hours in ((0.01, 30), (0.04, 48)):
        marks = zoho.watermarks()
        change = zoho.sandbox.advance(hours=hours, change_share=share)
        runs, calls = zoho.sync()
        zoho.check.assert_equal()
        expected = {USERS: 1}
        for entity in MODULES:
            truth = zoho.sandbox.truth(entity)
            wanted = changed_since(truth, marks[entity] - OVERLAP)
            # What was read is the change (plus the few records inside the overlap window) …
            changed = len(change.created[entity]) + len(change.modified[entity])
            assert changed <= runs[entity]["fetched"] == wanted <= changed + 3, entity
            assert runs[entity]["inserted"] == len(change.created[entity]), entity
            # … and what it cost follows from that alone, not from the size of the module.
            expected[records(entity)] = pages(wanted)
            expected[deleted(entity)] = 1
            if share == 0.01:  # nothing was deleted before: every deletion is newly marked
                gone = len(change.soft_deleted[entity]) + len(change.hard_deleted[entity])
                assert runs[entity]["deleted"] == gone and gone >= 2, entity
        assert calls == expected  # no token call: the first run's token is reused from the store
    assert calls[records("contacts")] > 1  # the 4% round needed more pages than the 1% round
    assert_content_follows_the_clinic(zoho)

    # Nothing changed: one call per stream, answered 304 / 204 unless the overlap window re-reads.
    marks = zoho.watermarks()
    statuses_before = zoho.sandbox.counters.statuses()
    runs, calls = zoho.sync()
    zoho.check.assert_equal()
    assert calls == {USERS: 1, **{records(e): 1 for e in MODULES}, **{deleted(e): 1 for e in MODULES}}
    statuses = zoho.sandbox.counters.statuses()
    answers = {}
    for entity in MODULES:
        truth = zoho.sandbox.truth(entity)
        newest_deletion = max(row.deleted_at for row in truth.values() if row.deleted_at)
        rereads = changed_since(truth, marks[entity] - OVERLAP)
        answers[records(entity)] = 200 if rereads else 304
        answers[deleted(entity)] = 200 if deleted_since(truth, newest_deletion - OVERLAP) else 204
        assert runs[entity]["fetched"] == rereads and runs[entity]["unchanged"] == rereads, entity
        assert runs[entity]["inserted"] == runs[entity]["updated"] == runs[entity]["deleted"] == 0, entity
    for endpoint, status in answers.items():
        before = statuses_before.get(endpoint, {}).get(status, 0)
        assert statuses[endpoint][status] == before + 1, endpoint
    assert Counter(answers.values())[304] >= 3  # this clinic's changes mostly lie outside the overlap

    assert zoho.sandbox.counters.count(TOKEN) == 1 and zoho.tokens_issued() == 1
    assert_token_cached_in_store(zoho)
    assert waits == []  # nothing failed, nothing waited


def test_faults_mid_sync_end_in_the_same_state(zoho: Zoho, waits: list[float]) -> None:
    # Full sync: a dropped connection and two 429s inside the contacts' page-token chain, two 500s
    # inside the cases' chain, and every token revoked half-way through the follow-ups.
    zoho.faults.arm(records("contacts"), after=12, drop_connection=1, rate_limit_burst=2)
    zoho.faults.arm(records("tickets"), after=11, server_error=2)
    zoho.faults.arm(records("follow_ups"), after=3, expire_tokens=0)
    runs, calls = zoho.sync()
    zoho.check.assert_equal()
    minimum = full_sync_minimum(zoho)
    # Each fault costs exactly one repeated call; the revoked token one refresh.
    assert calls[records("contacts")] == minimum[records("contacts")] + 3
    assert calls[records("tickets")] == minimum[records("tickets")] + 2
    assert calls[records("follow_ups")] == minimum[records("follow_ups")] + 1
    assert calls[TOKEN] == 2 == zoho.tokens_issued()

    # Incremental sync after creates, modifications and both kinds of deletion, with faults again.
    zoho.sandbox.advance(hours=30, change_share=0.02)
    zoho.faults.arm(records("contacts"), after=1, drop_connection=1, rate_limit_burst=1, server_error=1)
    zoho.faults.arm(records("calls"), after=1, expire_tokens=0)
    zoho.sync()
    zoho.check.assert_equal()
    assert_content_follows_the_clinic(zoho)

    fired = zoho.sandbox.faults.snapshot()["fired"]
    assert fired == {"drop_connection": 2, "rate_limit_burst": 3, "server_error": 3, "expire_tokens": 2}
    answered: Counter[int] = Counter()
    for by_status in zoho.sandbox.counters.statuses().values():
        answered.update(by_status)
    assert (answered[0], answered[429], answered[500], answered[401]) == (2, 3, 3, 2)  # 0: dropped
    assert zoho.tokens_issued() == 3  # one refresh per revocation, none otherwise
    # Every dropped, rate-limited or failed call was retried after a back-off, 429s after longer ones.
    assert len(waits) == 8 and all(wait > 0 for wait in waits)
    assert sorted(waits)[-3:] == sorted(w for w in waits if w >= 2.5)[-3:]
