"""End to end: the real ``crm-connector sync`` against the Zoho sandbox on 127.0.0.1, SQLite and PostgreSQL.

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

import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from e2e_support import TruthCheck

from connector import jobs, runtime
from connector.cli import main
from connector.http import TransportSettings
from connector.sandbox import generate_clinic, start_sandbox
from connector.sandbox.clinic import LIVE, Clinic
from connector.sandbox.server import Handler, Request, Response, Route, RunningSandbox
from connector.sandbox.zoho import MODULE_ENTITIES, ZohoApp, ZohoCredentials, zoho_id
from connector.store import open_store
from connector.store.schema import auth_tokens, contacts, tickets

pytestmark = pytest.mark.slow

SOURCE = "zoho_e2e"
SEED = 20261102
NOW = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
#: Over 5,000 contacts, and cases past Zoho's 2,000-row discrete paging limit.
SIZE = {
    "agents": 30,
    "contacts": 6_000,
    "tickets": 2_600,
    "follow_ups": 1_200,
    "calls": 1_800,
    "surveys": 600,
}
MODULES = {entity: module for module, entity in MODULE_ENTITIES.items() if entity}
ENTITIES = ("agents", *MODULES)
PER_PAGE = 200
TOKEN = "POST /oauth/v2/token"
USERS = "GET /crm/v8/users"
#: The shortest back-off after a 429 ("equal jitter": half the initial wait at least).
RATE_LIMIT_MIN_WAIT = TransportSettings().rate_limit_initial_s / 2
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


@dataclass(frozen=True)
class SyncResult:
    """One CLI sync: its entity runs, and the calls (by endpoint) and answers (by endpoint and
    status, 0 = connection dropped) the sandbox saw during it."""

    runs: dict[str, dict[str, Any]]
    calls: dict[str, int]
    answers: dict[str, Counter[int]]


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

    def write_config(self, **options: int) -> None:
        """The config file: secrets as ``${ENV}`` references, ``options`` as extra source keys."""
        base_url = self.sandbox.base_url
        extra = "".join(f"{key} = {value}\n" for key, value in options.items())
        self.config.write_text(
            f'[store]\nurl = "{self.store_url}"\n'
            '[clinic]\ntimezone = "Asia/Shanghai"\nlanguage = "en"\n'
            f"[sources.{SOURCE}]\n"
            'kind = "zoho"\n'
            'mapping = "zoho_e2e.toml"\n'
            f'accounts_url = "{base_url}"\n'
            f'api_domain = "{base_url}"\n'
            f'client_id = "{CREDENTIALS.client_id}"\n'
            'client_secret = "${ZOHO_E2E_CLIENT_SECRET}"\n'
            'refresh_token = "${ZOHO_E2E_REFRESH_TOKEN}"\n' + extra,
            encoding="utf-8",
        )
        assert not any(secret in self.config.read_text(encoding="utf-8") for secret in SECRETS.values())

    def sync(self) -> SyncResult:
        """Run ``crm-connector --json sync``; it must succeed for every entity."""
        counters = self.sandbox.counters
        calls_before, answers_before = counters.calls(), counters.statuses()
        result = CliRunner().invoke(
            main, ["--config", str(self.config), "--json", "sync"], env=SECRETS, catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        assert not any(secret in result.output for secret in SECRETS.values())
        runs = {run["entity"]: run for run in json.loads(result.output)}
        assert set(runs) == set(ENTITIES) and all(run["status"] == "success" for run in runs.values()), runs
        calls = {
            endpoint: n - calls_before.get(endpoint, 0)
            for endpoint, n in counters.calls().items()
            if n != calls_before.get(endpoint, 0)
        }
        answers = {
            endpoint: Counter(by_status) - Counter(answers_before.get(endpoint, {}))
            for endpoint, by_status in counters.statuses().items()
            if endpoint in calls
        }
        # The connector counts every attempt (failed ones and token calls too), as the CRM does.
        assert sum(run["api_calls"] for run in runs.values()) == sum(calls.values())
        return SyncResult(runs, calls, answers)

    def tokens_issued(self) -> int:
        return int(self.sandbox.state()["tokens_issued"])


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Back-off waits the CLI's sync asked for, recorded instead of slept."""
    recorded: list[float] = []

    def build_source(*args: Any, **kwargs: Any) -> Any:
        return runtime.build_source(*args, **{**kwargs, "sleep": recorded.append})

    monkeypatch.setattr(jobs, "build_source", build_source)
    return recorded


@pytest.fixture
def zoho(tmp_path: Path, db_url: str) -> Iterator[Zoho]:
    faults = MidSyncFaults(ZohoApp(generate_clinic(SEED, SIZE, now=NOW)))
    with start_sandbox(faults) as sandbox:
        (tmp_path / "zoho_e2e.toml").write_text(MAPPING, encoding="utf-8")
        check = TruthCheck(sandbox, db_url, SOURCE, ENTITIES)
        zoho = Zoho(sandbox, faults, tmp_path / "connector.toml", db_url, check)
        zoho.write_config()
        yield zoho


def full_sync_minimum(zoho: Zoho) -> dict[str, int]:
    """One token, one call per 200 records per module, one (empty) deletions call per module."""
    calls = {TOKEN: 1, USERS: 1}
    for entity in MODULES:
        live = sum(1 for row in zoho.sandbox.truth(entity).values() if row.deleted is None)
        calls[records(entity)] = pages(live)
        calls[deleted(entity)] = 1
    return calls


def assert_content_follows_the_clinic(zoho: Zoho) -> None:
    """Beyond ids and times: changed contact details and ticket statuses reached the store."""
    store = open_store(zoho.store_url, upgrade=False)
    try:
        with store.connect() as conn:
            stored_contacts = {
                row.external_id: (row.mobile, row.email, row.owner_id)
                for row in conn.execute(
                    sa.select(
                        contacts.c.external_id, contacts.c.mobile, contacts.c.email, contacts.c.owner_id
                    )
                )
            }
            stored_status = {
                row.external_id: row.status
                for row in conn.execute(sa.select(tickets.c.external_id, tickets.c.status))
            }
    finally:
        store.dispose()
    for person in zoho.clinic.contacts:
        if person.deleted == LIVE:
            expected = (person.mobile, person.email, zoho_id("users", person.owner))
            assert stored_contacts[zoho_id("Contacts", person.key)] == expected, person.key
    for ticket in zoho.clinic.tickets:
        if ticket.deleted == LIVE:
            # Zoho's Cases have no "resolved" status: the sandbox shows resolved ones as Closed.
            status = "closed" if ticket.status == "resolved" else ticket.status
            assert stored_status[zoho_id("Cases", ticket.key)] == status, ticket.key


def assert_token_cached_in_store(zoho: Zoho) -> None:
    store = open_store(zoho.store_url, upgrade=False)
    try:
        with store.connect() as conn:
            row = conn.execute(sa.select(auth_tokens).where(auth_tokens.c.source == SOURCE)).one()
    finally:
        store.dispose()
    assert row.expires_at > datetime.now(UTC) + timedelta(minutes=30)


def test_syncs_mirror_the_sandbox_at_minimal_cost(zoho: Zoho, waits: list[float]) -> None:
    zoho.write_config(overlap_s=0)  # no re-read window: an incremental sync reads exactly the change
    full = zoho.sync()
    assert full.runs["contacts"]["fetched"] >= 5_000 and full.runs["tickets"]["fetched"] > 2_000
    assert full.calls == full_sync_minimum(zoho)
    compared = zoho.check.assert_equal()
    assert compared["contacts"] == SIZE["contacts"] and compared["surveys"] == SIZE["surveys"]

    for share, hours in ((0.01, 30), (0.04, 48)):
        change = zoho.sandbox.advance(hours=hours, change_share=share)
        incremental = zoho.sync()
        zoho.check.assert_equal()
        expected = {USERS: 1}
        for entity in MODULES:
            run = incremental.runs[entity]
            created, modified = len(change.created[entity]), len(change.modified[entity])
            # What was read is the change, and what it cost follows from that alone, not from N.
            assert (run["fetched"], run["inserted"], run["updated"]) == (
                created + modified,
                created,
                modified,
            )
            expected[records(entity)] = pages(created + modified)
            expected[deleted(entity)] = 1
            if share == 0.01:  # nothing was deleted before: every deletion is newly marked
                gone = len(change.soft_deleted[entity]) + len(change.hard_deleted[entity])
                assert run["deleted"] == gone >= 2, entity
        assert incremental.calls == expected  # no token call: the first run's token comes from the store
    assert incremental.calls[records("contacts")] > 1  # the 4% change needs more pages than the 1% one
    assert_content_follows_the_clinic(zoho)

    # Nothing changed: one call per stream, each answered 304 (records) or 204 (deletions).
    rerun = zoho.sync()
    zoho.check.assert_equal()
    assert rerun.calls == {USERS: 1, **{records(e): 1 for e in MODULES}, **{deleted(e): 1 for e in MODULES}}
    for entity in MODULES:
        assert rerun.answers[records(entity)] == {304: 1} and rerun.answers[deleted(entity)] == {204: 1}
        assert rerun.runs[entity]["fetched"] == rerun.runs[entity]["deleted"] == 0

    assert zoho.sandbox.counters.count(TOKEN) == 1 and zoho.tokens_issued() == 1
    assert_token_cached_in_store(zoho)
    assert waits == []  # nothing failed, nothing waited


def test_faults_mid_sync_end_in_the_same_state(zoho: Zoho, waits: list[float]) -> None:
    # Full sync: a dropped connection and two 429s inside the contacts' page-token chain, two 500s
    # inside the cases' chain, and every token revoked half-way through the follow-ups.
    zoho.faults.arm(records("contacts"), after=12, drop_connection=1, rate_limit_burst=2)
    zoho.faults.arm(records("tickets"), after=11, server_error=2)
    zoho.faults.arm(records("follow_ups"), after=3, expire_tokens=0)
    full = zoho.sync()
    zoho.check.assert_equal()
    # Each fault costs exactly one repeated call; the revoked token one refresh and one repeat.
    minimum = full_sync_minimum(zoho)
    assert full.answers[records("contacts")] == {200: minimum[records("contacts")], 0: 1, 429: 2}
    assert full.answers[records("tickets")] == {200: minimum[records("tickets")], 500: 2}
    assert full.answers[records("follow_ups")] == {200: minimum[records("follow_ups")], 401: 1}
    repeats = {records("contacts"): 3, records("tickets"): 2, records("follow_ups"): 1, TOKEN: 1}
    assert full.calls == {endpoint: n + repeats.get(endpoint, 0) for endpoint, n in minimum.items()}
    assert zoho.tokens_issued() == 2

    # Incremental sync (default re-read overlap) after creates, modifications and both kinds of
    # deletion, with faults again: on the contacts' deletions read, and a revocation before the calls'.
    zoho.sandbox.advance(hours=30, change_share=0.02)
    zoho.faults.arm(records("contacts"), after=1, drop_connection=1, rate_limit_burst=1, server_error=1)
    zoho.faults.arm(records("calls"), after=1, expire_tokens=0)
    incremental = zoho.sync()
    zoho.check.assert_equal()
    assert_content_follows_the_clinic(zoho)
    assert incremental.answers[deleted("contacts")] == {0: 1, 429: 1, 500: 1, 200: 1}
    assert incremental.answers[deleted("calls")] == {401: 1, 200: 1}
    assert incremental.calls[TOKEN] == 1 and zoho.tokens_issued() == 3

    fired = zoho.sandbox.faults.snapshot()["fired"]
    assert fired == {"drop_connection": 2, "rate_limit_burst": 3, "server_error": 3, "expire_tokens": 2}
    # Every dropped, rate-limited or failed call was retried after a back-off (a refreshed token is
    # used at once), the 429s after the longer rate-limit back-off.
    assert len(waits) == 8 and all(wait > 0 for wait in waits)
    assert sum(wait >= RATE_LIMIT_MIN_WAIT for wait in waits) >= 3
