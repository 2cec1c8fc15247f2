"""The Zoho CRM sandbox over real HTTP on 127.0.0.1: auth, reads, paging, deletions, writes, faults, admin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from connector.cli import sandbox_cmd
from connector.cli.context import AppContext
from connector.sandbox import available_crms, create_app
from connector.sandbox.clinic import CLINIC_TZ, Clinic, generate_clinic
from connector.sandbox.faults import FaultError, parse_fault_options
from connector.sandbox.server import Counters, RunningSandbox, start_sandbox
from connector.sandbox.zoho import ZohoApp, all_fields, zoho_id

NOW = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
CONTACT_FIELDS = "First_Name,Last_Name,Full_Name,Email,Mobile,Owner,Created_Time,Modified_Time"


class FakeClock:
    """Monotonic seconds that tests move by hand (token lifetimes, rate windows, counters)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def serve(clinic: Clinic, clock: FakeClock, **options: Any) -> RunningSandbox:
    return start_sandbox(ZohoApp(clinic, token_clock=clock, **options), clock=clock)


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[RunningSandbox]:
    with serve(generate_clinic(11, "small", now=NOW), clock) as running:
        yield running


@pytest.fixture(scope="module")
def big_clinic() -> Clinic:
    """2,500 contacts: past the 2,000-row discrete paging limit. Tests here only read it."""
    return generate_clinic(5, {"contacts": 2_500, "tickets": 50, "follow_ups": 10, "calls": 10}, now=NOW)


class Client:
    """A requests session that knows the sandbox and holds an access token."""

    def __init__(self, running: RunningSandbox) -> None:
        self.running = running
        self.url = running.base_url
        self.http = requests.Session()
        self.token = self.new_token()

    def new_token(self) -> str:
        answer = self.http.post(
            f"{self.url}/oauth/v2/token", data={"grant_type": "refresh_token", **self.creds}
        )
        return answer.json()["access_token"]

    @property
    def creds(self) -> dict[str, str]:
        return self.running.app.credentials()

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> requests.Response:
        auth = {"Authorization": f"Zoho-oauthtoken {self.token}", **(headers or {})}
        return self.http.get(f"{self.url}{path}", params=params, headers=auth, timeout=30)

    def send(self, method: str, path: str, body: Any) -> requests.Response:
        auth = {"Authorization": f"Zoho-oauthtoken {self.token}"}
        return self.http.request(method, f"{self.url}{path}", json=body, headers=auth, timeout=30)

    def walk(
        self, module: str, fields: str, headers: dict[str, str] | None = None, **params: Any
    ) -> list[dict]:
        """Every record of a query: pages, then page tokens, exactly as the adapter is meant to."""
        records: list[dict] = []
        query = {"fields": fields, "per_page": 200, "sort_by": "Modified_Time", "sort_order": "asc", **params}
        answer = self.get(f"/crm/v8/{module}", headers, **query)
        while answer.status_code == 200:
            body = answer.json()
            records.extend(body["data"])
            if not body["info"]["more_records"]:
                break
            answer = self.get(
                f"/crm/v8/{module}", headers, **query, page_token=body["info"]["next_page_token"]
            )
        assert answer.status_code in (200, 204, 304), answer.text
        return records


@pytest.fixture
def client(sandbox: RunningSandbox) -> Client:
    return Client(sandbox)


def iso(moment: datetime) -> str:
    return moment.astimezone(CLINIC_TZ).isoformat()


# ---- auth -------------------------------------------------------------------------------------


def test_token_refresh_answers_like_zoho(sandbox: RunningSandbox) -> None:
    creds = sandbox.app.credentials()
    url = f"{sandbox.base_url}/oauth/v2/token"
    as_form = requests.post(url, data={"grant_type": "refresh_token", **creds}).json()
    as_query = requests.post(url, params={"grant_type": "refresh_token", **creds}).json()
    for answer in (as_form, as_query):
        assert set(answer) == {"access_token", "api_domain", "token_type", "expires_in"}
        assert answer["api_domain"] == sandbox.base_url and answer["expires_in"] == 3600
        assert answer["access_token"].startswith("1000.")
    assert as_form["access_token"] != as_query["access_token"]
    bad_refresh = requests.post(
        url, data={"grant_type": "refresh_token", **creds, "refresh_token": "1000.x.y"}
    )
    assert bad_refresh.json() == {"error": "invalid_code"}
    bad_client = requests.post(url, data={"grant_type": "refresh_token", **creds, "client_secret": "nope"})
    assert bad_client.json() == {"error": "invalid_client"}


def test_ten_tokens_per_ten_minutes_per_refresh_token(sandbox: RunningSandbox, clock: FakeClock) -> None:
    url = f"{sandbox.base_url}/oauth/v2/token"
    form = {"grant_type": "refresh_token", **sandbox.app.credentials()}
    for _ in range(10):
        assert "access_token" in requests.post(url, data=form).json()
        clock.now += 1
    blocked = requests.post(url, data=form)
    assert blocked.status_code == 400 and blocked.json()["error"] == "Access Denied"
    assert "too many requests" in blocked.json()["error_description"]
    clock.now += 591  # the first token leaves the 10-minute window
    assert "access_token" in requests.post(url, data=form).json()
    assert sandbox.state()["tokens_issued"] == 11


def test_data_calls_need_a_valid_unexpired_zoho_token(client: Client, clock: FakeClock) -> None:
    url = f"{client.url}/crm/v8/Contacts"
    missing = requests.get(url, params={"fields": "Email"})
    assert missing.status_code == 401 and missing.json()["code"] == "AUTHENTICATION_FAILURE"
    bearer = requests.get(
        url, params={"fields": "Email"}, headers={"Authorization": f"Bearer {client.token}"}
    )
    assert bearer.status_code == 401
    forged = requests.get(
        url, params={"fields": "Email"}, headers={"Authorization": "Zoho-oauthtoken 1000.a.b"}
    )
    assert forged.status_code == 401
    assert forged.json() == {
        "code": "INVALID_TOKEN",
        "details": {},
        "message": "invalid oauth token",
        "status": "error",
    }
    assert client.get("/crm/v8/Contacts", fields="Email").status_code == 200
    clock.now += 3600
    assert client.get("/crm/v8/Contacts", fields="Email").json()["code"] == "INVALID_TOKEN"


# ---- record reads -------------------------------------------------------------------------------


def test_fields_are_required_limited_and_returned_alone(client: Client) -> None:
    missing = client.get("/crm/v8/Contacts")
    assert missing.status_code == 400 and missing.json()["code"] == "REQUIRED_PARAM_MISSING"
    assert missing.json()["details"] == {"param_name": "fields"}
    too_many = client.get("/crm/v8/Contacts", fields=",".join(f"F{i}" for i in range(51)))
    assert too_many.status_code == 400 and too_many.json()["code"] == "LIMIT_EXCEEDED"
    assert too_many.json()["details"] == {"limit": 50, "param_name": "fields"}
    page = client.get("/crm/v8/Contacts", fields="Email,Mobile,No_Such_Field", per_page=5).json()
    assert all(set(record) == {"id", "Email", "Mobile"} for record in page["data"])
    tasks = client.get("/crm/v8/Tasks", fields="What_Id", per_page=50).json()["data"]
    assert all(set(t) == {"id", "What_Id", "$se_module"} for t in tasks)
    assert {t["$se_module"] for t in tasks} == {"Cases", None}


def test_records_carry_the_documented_shapes(client: Client, sandbox: RunningSandbox) -> None:
    clinic = sandbox.clinic
    cases = {c["id"]: c for c in client.walk("Cases", ",".join(all_fields("Cases")))}
    assert len(cases) == len(clinic.tickets)
    ticket = next(t for t in clinic.tickets if t.satisfaction is not None and t.category == "complaint")
    case = cases[zoho_id("Cases", ticket.key)]
    contact = clinic.contacts[ticket.contact]
    owner = clinic.agents[ticket.owner]
    assert case["Subject"] == ticket.subject and case["Case_Number"] == str(ticket.number)
    assert case["Related_To"] == {"id": zoho_id("Contacts", contact.key), "name": contact.name}
    assert case["Owner"] == {"id": zoho_id("users", owner.key), "name": owner.name, "email": owner.email}
    assert case["Satisfaction_Score"] == ticket.satisfaction
    assert case["First_Response_Time"] == iso(ticket.first_response)
    assert case["Modified_Time"] == iso(ticket.modified) and case["Modified_Time"].endswith("+08:00")
    assert case["Case_Reason"] == "Complaint" and case["Type"] == "Problem"
    assert {c["Status"] for c in cases.values()} <= {"New", "On Hold", "Escalated", "Closed"}
    assert {c["Case_Origin"] for c in cases.values()} <= {"Phone", "Web", "Walk-in", "WeChat", "Email"}
    calls = client.walk(
        "Calls", "Call_Type,Call_Purpose,Call_Duration,Call_Duration_in_seconds,Call_Start_Time"
    )
    for call in calls:
        minutes, seconds = call["Call_Duration"].split(":")[-2:]
        assert int(minutes) * 60 + int(seconds) == call["Call_Duration_in_seconds"] % 3600
    assert {c["Call_Type"] for c in calls} == {"Inbound", "Outbound", "Missed"}
    assert {c["Call_Purpose"] for c in calls} == {"Booking", "Consultation", "Complaint", "Other"}
    tasks = client.walk("Tasks", "Status,Due_Date,Closed_Time,Follow_Up_Type")
    assert {t["Status"] for t in tasks} == {
        "Not Started",
        "In Progress",
        "Deferred",
        "Completed",
        "Cancelled",
    }
    assert all((t["Closed_Time"] is not None) == (t["Status"] == "Completed") for t in tasks)
    assert all(len(t["Due_Date"]) == 10 for t in tasks)


def test_chinese_picklists_are_an_option() -> None:
    app = ZohoApp(generate_clinic(11, "small", now=NOW), picklist_language="zh")
    with start_sandbox(app) as running:
        client = Client(running)
        cases = client.walk("Cases", "Status,Case_Reason")
        assert {c["Case_Reason"] for c in cases} == {"投诉", "咨询", "预约", "其他"}
        assert {c["Status"] for c in cases} <= {"新建", "挂起", "已升级", "已关闭"}


def test_discrete_pages_stop_at_2000_rows_and_page_tokens_go_on(big_clinic: Clinic, clock: FakeClock) -> None:
    with serve(big_clinic, clock) as running:
        client = Client(running)
        seen: list[str] = []
        for page in range(1, 11):
            body = client.get(
                "/crm/v8/Contacts", fields="Email", page=page, sort_by="id", sort_order="asc"
            ).json()
            seen += [r["id"] for r in body["data"]]
        assert len(seen) == 2_000 and body["info"]["more_records"] is True
        eleventh = client.get("/crm/v8/Contacts", fields="Email", page=11, sort_by="id", sort_order="asc")
        assert eleventh.status_code == 400
        assert eleventh.json()["code"] == "DISCRETE_PAGINATION_LIMIT_EXCEEDED"
        assert eleventh.json()["details"] == {"limit": 2000}
        rest = client.get(
            "/crm/v8/Contacts",
            fields="Email",
            sort_by="id",
            sort_order="asc",
            page_token=body["info"]["next_page_token"],
        ).json()
        seen += [r["id"] for r in rest["data"]]
        while rest["info"]["more_records"]:
            token = rest["info"]["next_page_token"]
            rest = client.get(
                "/crm/v8/Contacts", fields="Email", sort_by="id", sort_order="asc", page_token=token
            )
            rest = rest.json()
            seen += [r["id"] for r in rest["data"]]
        assert seen == sorted(running.truth("contacts"))
        assert client.get("/crm/v8/Contacts", fields="Email", per_page=201).status_code == 400


def test_full_walk_by_modified_time_matches_the_truth(big_clinic: Clinic, clock: FakeClock) -> None:
    with serve(big_clinic, clock) as running:
        records = Client(running).walk("Contacts", CONTACT_FIELDS)
        truth = running.truth("contacts")
        assert [r["id"] for r in records] == sorted(truth, key=lambda i: (truth[i].modified, i))
        assert all(r["Modified_Time"] == iso(truth[r["id"]].modified) for r in records)


def test_page_tokens_are_bound_to_their_query(big_clinic: Clinic, clock: FakeClock) -> None:
    with serve(big_clinic, clock, token_row_limit=600) as running:
        client = Client(running)
        since = {"If-Modified-Since": "2020-01-01T00:00:00+08:00"}
        first = client.get("/crm/v8/Contacts", since, fields="Email", sort_by="Modified_Time").json()
        token = first["info"]["next_page_token"]
        assert len(token) <= 96 and first["info"]["page_token_expiry"].endswith("+08:00")
        other_fields = client.get(
            "/crm/v8/Contacts", since, fields="Mobile", sort_by="Modified_Time", page_token=token
        )
        assert other_fields.json()["code"] == "TOKEN_BOUND_DATA_MISMATCH"
        other_header = client.get(
            "/crm/v8/Contacts", fields="Email", sort_by="Modified_Time", page_token=token
        )
        assert other_header.json()["code"] == "TOKEN_BOUND_DATA_MISMATCH"
        unknown = client.get(
            "/crm/v8/Contacts", since, fields="Email", sort_by="Modified_Time", page_token="abc"
        )
        assert unknown.status_code == 400 and unknown.json()["code"] == "EXPIRED_VALUE"
        served = len(first["data"])
        while True:
            answer = client.get(
                "/crm/v8/Contacts", since, fields="Email", sort_by="Modified_Time", page_token=token
            )
            if answer.status_code == 400:
                assert answer.json()["code"] == "PAGINATION_LIMIT_EXCEEDED"
                break
            served += len(answer.json()["data"])
            token = answer.json()["info"]["next_page_token"]
        assert served == 600
        running.advance(timedelta(hours=25), change_share=0)
        stale = client.get(
            "/crm/v8/Contacts", since, fields="Email", sort_by="Modified_Time", page_token=token
        )
        assert stale.json()["code"] == "EXPIRED_VALUE"


def test_changes_while_paging_are_never_skipped(clock: FakeClock) -> None:
    clinic = generate_clinic(6, {"contacts": 1_000}, now=NOW)
    with serve(clinic, clock) as running:
        client = Client(running)
        live_before = {i for i, row in running.truth("contacts").items() if row.deleted is None}
        query = {"fields": "Email", "per_page": 100, "sort_by": "Modified_Time", "sort_order": "asc"}
        body = client.get("/crm/v8/Contacts", **query).json()
        seen = [r["id"] for r in body["data"]]
        summary = running.advance(timedelta(hours=2), rng_seed=3, change_share=0.2)
        while body["info"]["more_records"]:
            body = client.get("/crm/v8/Contacts", **query, page_token=body["info"]["next_page_token"]).json()
            seen += [r["id"] for r in body["data"]]
        deleted = {
            zoho_id("Contacts", k)
            for k in (*summary.soft_deleted["contacts"], *summary.hard_deleted["contacts"])
        }
        assert live_before - deleted <= set(seen)
        modified = {zoho_id("Contacts", k) for k in summary.modified["contacts"]}
        assert modified & set(seen[-len(modified) - len(summary.created["contacts"]) :])


def test_if_modified_since_is_strict_and_answers_304(client: Client, sandbox: RunningSandbox) -> None:
    nothing = client.get("/crm/v8/Cases", {"If-Modified-Since": iso(NOW)}, fields="Subject")
    assert nothing.status_code == 304 and nothing.content == b""
    bad = client.get("/crm/v8/Cases", {"If-Modified-Since": "yesterday"}, fields="Subject")
    assert bad.status_code == 400
    summary = sandbox.advance(timedelta(hours=24), rng_seed=9)
    changed = client.walk("Cases", "Subject,Modified_Time", {"If-Modified-Since": iso(NOW)})
    expected = {zoho_id("Cases", k) for k in (*summary.created["tickets"], *summary.modified["tickets"])}
    expected -= {
        zoho_id("Cases", k) for k in (*summary.soft_deleted["tickets"], *summary.hard_deleted["tickets"])
    }
    assert {r["id"] for r in changed} == expected
    newest = max(changed, key=lambda r: r["Modified_Time"])
    after_newest = client.walk("Cases", "Subject", {"If-Modified-Since": newest["Modified_Time"]})
    assert newest["id"] not in {r["id"] for r in after_newest}


def test_204_when_a_module_has_no_records_and_errors_for_unknown_paths(client: Client) -> None:
    empty = client.get("/crm/v8/Agent_Performance", fields="Name")
    assert empty.status_code == 204 and empty.content == b""
    unknown = client.get("/crm/v8/Leadz", fields="Email")
    assert unknown.status_code == 400 and unknown.json()["code"] == "INVALID_MODULE"
    assert client.get("/crm/v9/Contacts").json()["code"] == "INVALID_URL_PATTERN"
    assert client.send("DELETE", "/crm/v8/Contacts", {}).json()["code"] == "INVALID_REQUEST_METHOD"


def test_deleted_records_report_recycle_and_permanent(client: Client, sandbox: RunningSandbox) -> None:
    assert client.get("/crm/v8/Contacts/deleted").status_code == 204
    summary = sandbox.advance(timedelta(hours=24), rng_seed=1, change_share=0.05)
    soft = {zoho_id("Contacts", k) for k in summary.soft_deleted["contacts"]}
    hard = {zoho_id("Contacts", k) for k in summary.hard_deleted["contacts"]}
    every = client.get("/crm/v8/Contacts/deleted", type="all").json()
    assert {d["id"] for d in every["data"]} == soft | hard
    times = [d["deleted_time"] for d in every["data"]]
    assert times == sorted(times, reverse=True)
    recycle = client.get("/crm/v8/Contacts/deleted", type="recycle").json()["data"]
    assert {d["id"] for d in recycle} == soft and all(d["display_name"] for d in recycle)
    permanent = client.get("/crm/v8/Contacts/deleted", type="permanent").json()["data"]
    assert {d["id"] for d in permanent} == hard
    assert all(d["display_name"] is None and d["deleted_by"] is None for d in permanent)
    latest = times[0]
    assert client.get("/crm/v8/Contacts/deleted", {"If-Modified-Since": latest}).status_code == 204
    paged = client.get("/crm/v8/Contacts/deleted", per_page=1, page=2).json()
    assert paged["data"][0]["id"] == every["data"][1]["id"]
    assert paged["info"]["more_records"] is (len(every["data"]) > 2)
    assert client.get("/crm/v8/Contacts/deleted", type="gone").status_code == 400
    assert not soft & {r["id"] for r in client.walk("Contacts", "Email")}


def test_users_by_type(client: Client, sandbox: RunningSandbox) -> None:
    agents = sandbox.clinic.agents
    everyone = client.get("/crm/v8/users", type="AllUsers").json()
    assert "data" not in everyone and len(everyone["users"]) == len(agents)
    user = everyone["users"][0]
    assert user["full_name"] == agents[0].name and user["status"] == "active"
    assert user["role"]["name"] == "客服主管" and user["profile"]["name"] == "Administrator"
    assert {u["department"] for u in everyone["users"]} == {a.department for a in agents}
    active = client.get("/crm/v8/users", type="ActiveUsers").json()["users"]
    inactive = client.get("/crm/v8/users", type="DeactiveUsers").json()["users"]
    assert len(active) == sum(a.active for a in agents) and {u["status"] for u in inactive} == {"inactive"}
    assert [u["id"] for u in client.get("/crm/v8/users", type="CurrentUser").json()["users"]] == [user["id"]]
    assert client.get("/crm/v8/users", type="Everyone").status_code == 400
    assert client.get("/crm/v8/users", {"If-Modified-Since": iso(NOW)}).status_code == 304
    assert client.get("/crm/v8/org").json()["org"][0]["time_zone"] == "Asia/Shanghai"


# ---- writes -------------------------------------------------------------------------------------


def scorecard(name: str, score: Any = 91.5) -> dict[str, Any]:
    return {"Name": name, "Composite_Score": score, "Period": "2026-10", "Agent": zoho_id("users", 1)}


def test_upsert_inserts_then_updates_by_name(client: Client, sandbox: RunningSandbox) -> None:
    body = {
        "data": [scorecard("a_2026-10"), scorecard("b_2026-10")],
        "duplicate_check_fields": ["Name"],
        "trigger": [],
    }
    first = client.send("POST", "/crm/v8/Agent_Performance/upsert", body)
    assert first.status_code == 200
    items = first.json()["data"]
    assert [i["action"] for i in items] == ["insert", "insert"] and items[0]["duplicate_field"] is None
    assert items[0]["code"] == "SUCCESS" and items[0]["message"] == "record added"
    assert set(items[0]["details"]) == {"id", "Created_Time", "Modified_Time", "Created_By", "Modified_By"}
    again = client.send(
        "POST", "/crm/v8/Agent_Performance/upsert", {**body, "data": [scorecard("a_2026-10", 70)]}
    )
    item = again.json()["data"][0]
    assert again.status_code == 200 and item["action"] == "update" and item["duplicate_field"] == "Name"
    assert item["details"]["id"] == items[0]["details"]["id"]
    stored = client.get("/crm/v8/Agent_Performance", fields="Name,Composite_Score,Agent,Owner").json()["data"]
    assert sorted((r["Name"], r["Composite_Score"]) for r in stored) == [
        ("a_2026-10", 70),
        ("b_2026-10", 91.5),
    ]
    assert sandbox.app.written_records("Agent_Performance")[0]["Agent"]["id"] == zoho_id("users", 1)
    assert sandbox.counters.events() == {}


def test_mixed_results_give_207_and_all_failed_400(client: Client) -> None:
    mixed = client.send(
        "POST", "/crm/v8/Agent_Performance/upsert", {"data": [scorecard("ok"), scorecard("bad", "n/a")]}
    )
    assert mixed.status_code == 207
    good, bad = mixed.json()["data"]
    assert good["status"] == "success"
    assert bad == {
        "code": "INVALID_DATA",
        "details": {
            "api_name": "Composite_Score",
            "expected_data_type": "double",
            "json_path": "$.data[1].Composite_Score",
        },
        "message": "invalid data",
        "status": "error",
    }
    failed = client.send("POST", "/crm/v8/Agent_Performance/upsert", {"data": [{"Period": "2026-10"}]})
    assert failed.status_code == 400
    assert failed.json()["data"][0]["code"] == "MANDATORY_NOT_FOUND"
    assert failed.json()["data"][0]["details"] == {"api_name": "Name", "json_path": "$.data[0].Name"}
    too_many = client.send(
        "POST", "/crm/v8/Agent_Performance/upsert", {"data": [scorecard(str(i)) for i in range(101)]}
    )
    assert too_many.status_code == 400 and too_many.json()["code"] == "LIMIT_EXCEEDED"
    not_json = client.http.post(
        f"{client.url}/crm/v8/Agent_Performance",
        data=b"{",
        headers={"Authorization": f"Zoho-oauthtoken {client.token}"},
    )
    assert not_json.status_code == 400


def test_insert_gives_201_and_duplicates_are_rejected(client: Client, sandbox: RunningSandbox) -> None:
    created = client.send("POST", "/crm/v8/Agent_Performance", {"data": [scorecard("x")]})
    assert created.status_code == 201 and created.json()["data"][0]["message"] == "record added"
    duplicate = client.send("POST", "/crm/v8/Agent_Performance", {"data": [scorecard("x")]})
    assert duplicate.status_code == 400
    item = duplicate.json()["data"][0]
    assert item["code"] == "DUPLICATE_DATA" and item["details"]["api_name"] == "Name"
    assert item["details"]["id"] == created.json()["data"][0]["details"]["id"]
    existing = sandbox.clinic.contacts[next(c.key for c in sandbox.clinic.contacts if c.email)]
    clash = client.send("POST", "/crm/v8/Contacts", {"data": [{"Last_Name": "王", "Email": existing.email}]})
    assert clash.json()["data"][0]["code"] == "DUPLICATE_DATA"
    assert clash.json()["data"][0]["details"]["id"] == zoho_id("Contacts", existing.key)


def test_update_by_id_and_picklist_validation(client: Client, sandbox: RunningSandbox) -> None:
    record_id = client.send("POST", "/crm/v8/Agent_Performance", {"data": [scorecard("u")]}).json()["data"][0]
    record_id = record_id["details"]["id"]
    updated = client.send("PUT", "/crm/v8/Agent_Performance", {"data": [{"id": record_id, "Rank": 2}]})
    assert updated.status_code == 200 and updated.json()["data"][0]["message"] == "record updated"
    unknown = client.send("PUT", "/crm/v8/Agent_Performance", {"data": [{"id": "1", "Rank": 2}, {"Rank": 3}]})
    assert unknown.status_code == 400
    assert [i["code"] for i in unknown.json()["data"]] == ["INVALID_DATA", "MANDATORY_NOT_FOUND"]
    case_id = zoho_id("Cases", 0)
    wrong = client.send("PUT", "/crm/v8/Cases", {"data": [{"id": case_id, "Status": "Resolved"}]}).json()[
        "data"
    ][0]
    assert wrong["code"] == "INVALID_DATA" and wrong["details"]["supported_values"] == [
        "New",
        "On Hold",
        "Escalated",
        "Closed",
    ]


def test_updating_a_clinic_record_bumps_its_modified_time(client: Client, sandbox: RunningSandbox) -> None:
    sandbox.advance(timedelta(hours=1), change_share=0)
    contact = next(c for c in sandbox.clinic.contacts if c.email)
    body = {"data": [{"Email": contact.email, "Mobile": "13900000000"}], "duplicate_check_fields": ["Email"]}
    item = client.send("POST", "/crm/v8/Contacts/upsert", body).json()["data"][0]
    assert item["action"] == "update" and item["details"]["id"] == zoho_id("Contacts", contact.key)
    changed = client.walk("Contacts", "Mobile,Modified_Time", {"If-Modified-Since": iso(NOW)})
    assert [(r["id"], r["Mobile"]) for r in changed] == [(zoho_id("Contacts", contact.key), "13900000000")]
    assert changed[0]["Modified_Time"] == iso(sandbox.clinic.now)


def test_tasks_for_alerts_are_created_and_read_back(client: Client, sandbox: RunningSandbox) -> None:
    ticket = sandbox.clinic.tickets[3]
    task = {
        "Subject": "超时预警：投诉工单未在24小时内首次响应",
        "Due_Date": "2026-11-02",
        "Status": "Not Started",
        "Priority": "High",
        "Owner": {"id": zoho_id("users", ticket.owner)},
        "What_Id": {"id": zoho_id("Cases", ticket.key)},
        "$se_module": "Cases",
    }
    answer = client.send("POST", "/crm/v8/Tasks", {"data": [task], "trigger": ["workflow"]})
    assert answer.status_code == 201
    new_id = answer.json()["data"][0]["details"]["id"]
    read = client.walk(
        "Tasks", "Subject,What_Id,Owner,Status", {"If-Modified-Since": iso(NOW - timedelta(seconds=1))}
    )
    assert [r["id"] for r in read] == [new_id]
    assert read[0]["What_Id"] == {"id": zoho_id("Cases", ticket.key), "name": ticket.subject}
    assert read[0]["$se_module"] == "Cases" and read[0]["Owner"]["id"] == zoho_id("users", ticket.owner)
    assert sandbox.truth("follow_ups")[new_id].key == -1
    assert sandbox.counters.events() == {"trigger.workflow": 1}
    dangling = dict(task, What_Id={"id": "42"})
    assert (
        client.send("POST", "/crm/v8/Tasks", {"data": [dangling]}).json()["data"][0]["code"] == "INVALID_DATA"
    )


def test_omitted_trigger_runs_every_trigger(client: Client, sandbox: RunningSandbox) -> None:
    client.send(
        "POST", "/crm/v8/Agent_Performance/upsert", {"data": [scorecard("t1"), scorecard("t2", "bad")]}
    )
    assert sandbox.counters.events() == {"trigger.approval": 1, "trigger.blueprint": 1, "trigger.workflow": 1}
    bad = client.send(
        "POST", "/crm/v8/Agent_Performance/upsert", {"data": [scorecard("t3")], "trigger": ["cron"]}
    )
    assert bad.status_code == 400


# ---- faults -------------------------------------------------------------------------------------


def test_rate_limit_and_server_error_faults_count_down(client: Client, sandbox: RunningSandbox) -> None:
    sandbox.faults.configure({"rate_limit_burst": 2, "server_error": 1})
    answers = [client.get("/crm/v8/Contacts", fields="Email") for _ in range(4)]
    assert [a.status_code for a in answers] == [429, 429, 500, 200]
    assert answers[0].json()["code"] == "TOO_MANY_REQUESTS" and "Retry-After" not in answers[0].headers
    assert answers[2].json()["code"] == "INTERNAL_ERROR"
    assert sandbox.counters.statuses()["GET /crm/v8/Contacts"] == {200: 1, 429: 2, 500: 1}
    assert sandbox.faults.snapshot()["fired"]["rate_limit_burst"] == 2


def test_token_endpoint_is_not_a_data_call(sandbox: RunningSandbox) -> None:
    sandbox.faults.configure({"server_error": 1})
    client = Client(sandbox)  # the token request is not consumed by the fault
    assert client.get("/crm/v8/Contacts", fields="Email").status_code == 500


def test_dropped_connection_fault_closes_without_answer(client: Client, sandbox: RunningSandbox) -> None:
    requests.post(f"{sandbox.base_url}/_admin/faults", json={"drop_connection": 1}).raise_for_status()
    with pytest.raises(requests.ConnectionError):
        client.get("/crm/v8/Contacts", fields="Email")
    assert client.get("/crm/v8/Contacts", fields="Email").status_code == 200
    assert sandbox.counters.statuses()["GET /crm/v8/Contacts"] == {0: 1, 200: 1}


def test_expire_tokens_now_and_after_n_calls(client: Client, sandbox: RunningSandbox) -> None:
    sandbox.faults.configure({"expire_tokens": 0})
    assert client.get("/crm/v8/Contacts", fields="Email").json()["code"] == "INVALID_TOKEN"
    client.token = client.new_token()
    sandbox.faults.configure({"expire_tokens": 2})
    codes = [client.get("/crm/v8/Contacts", fields="Email").status_code for _ in range(3)]
    assert codes == [200, 200, 401]
    client.token = client.new_token()
    assert client.get("/crm/v8/Contacts", fields="Email").status_code == 200


def test_malformed_records_are_deterministic(client: Client, sandbox: RunningSandbox) -> None:
    clean = {r["id"]: r for r in client.walk("Cases", "Subject,Status,Created_Time,Modified_Time")}
    sandbox.faults.configure({"malformed": 0.2})
    broken = client.walk("Cases", "Subject,Status,Created_Time,Modified_Time")
    again = client.walk("Cases", "Subject,Status,Created_Time,Modified_Time")
    assert broken == again
    missing_id = [r for r in broken if "id" not in r]
    bad_date = [r for r in broken if "id" in r and r["Created_Time"] != clean[r["id"]]["Created_Time"]]
    bad_pick = [r for r in broken if "id" in r and r["Status"] != clean[r["id"]]["Status"]]
    assert missing_id and bad_date and bad_pick
    assert 0.1 < (len(missing_id) + len(bad_date) + len(bad_pick)) / len(broken) < 0.3
    with pytest.raises(ValueError):
        datetime.fromisoformat(bad_date[0]["Created_Time"])
    chosen = zoho_id("Cases", 7)
    sandbox.faults.configure({"malformed": {"ids": [chosen], "kind": "bad_date"}})
    dated = client.walk("Cases", "Subject,Created_Time")
    assert [r["id"] for r in dated if r["Created_Time"] != clean[r["id"]]["Created_Time"]] == [chosen]
    sandbox.faults.reset()
    assert {r["id"]: r["Status"] for r in client.walk("Cases", "Status")} == {
        i: r["Status"] for i, r in clean.items()
    }


def test_faults_from_start_options_cli_flags_and_bad_specs(clock: FakeClock) -> None:
    assert parse_fault_options(["rate_limit_burst=3", "malformed=0.05", "expire_tokens=0"]) == {
        "rate_limit_burst": 3,
        "malformed": 0.05,
        "expire_tokens": 0,
    }
    assert parse_fault_options(["malformed=1,2"]) == {"malformed": ["1", "2"]}
    for bad in (["nope=1"], ["server_error=x"], ["server_error"]):
        with pytest.raises(FaultError):
            parse_fault_options(bad)
    app = ZohoApp(generate_clinic(1, {"contacts": 20}, now=NOW), token_clock=clock)
    with start_sandbox(app, faults={"server_error": 1}) as running:
        assert Client(running).get("/crm/v8/Contacts", fields="Email").status_code == 500
        rejected = requests.post(f"{running.base_url}/_admin/faults", json={"server_error": -1})
        assert rejected.status_code == 400
        assert requests.post(f"{running.base_url}/_admin/faults", json={"malformed": 2}).status_code == 400


# ---- admin and framework ------------------------------------------------------------------------


def test_admin_advance_state_truth_and_counters(client: Client, sandbox: RunningSandbox) -> None:
    url = sandbox.base_url
    client.get("/crm/v8/Contacts", fields="Email")
    advanced = requests.post(f"{url}/_admin/advance", json={"hours": 24, "seed": 7}).json()
    assert advanced["start"] == NOW.isoformat() and advanced["counts"]["tickets"]["created"] >= 1
    state = requests.get(f"{url}/_admin/state").json()
    assert state["crm"] == "zoho" and state["now"] == (NOW + timedelta(hours=24)).isoformat()
    assert state["entities"]["tickets"]["hard_deleted"] >= 1 and state["tokens_issued"] == 1
    truth = requests.get(f"{url}/_admin/truth/tickets").json()["records"]
    assert {r["id"] for r in truth} == set(sandbox.truth("tickets"))
    assert {r["deleted"] for r in truth} == {None, "soft", "hard"}
    counters = requests.get(f"{url}/_admin/counters", params={"window": 20}).json()
    assert counters["endpoints"] == {"GET /crm/v8/Contacts": 1, "POST /oauth/v2/token": 1}
    assert counters["max_in_window"]["GET /crm/v8/Contacts"] == 1
    assert requests.post(f"{url}/_admin/advance", json={"hours": 0}).status_code == 400
    assert requests.get(f"{url}/_admin/truth/patients").status_code == 404
    requests.post(f"{url}/_admin/counters/reset")
    assert sandbox.counters.count() == 0


def test_counters_find_the_busiest_window() -> None:
    clock = FakeClock()
    counters = Counters(clock)
    for step in (0, 5, 10, 19, 20, 41, 42):
        clock.now = 1_000.0 + step
        counters.arrive("POST /cgi/crm/v2/data/query")
    assert counters.max_in_window(20) == {"POST /cgi/crm/v2/data/query": 5}  # 0, 5, 10, 19, 20
    assert counters.max_in_window(1) == {"POST /cgi/crm/v2/data/query": 2}
    assert counters.timestamps("POST /cgi/crm/v2/data/query")[0] == 1_000.0
    clock.now = 1_045.0
    assert counters.recent("POST /cgi/crm/v2/data/query", 20) == 2  # 41 and 42
    assert counters.recent("POST /cgi/crm/v2/data/query", 3.5) == 1
    assert counters.recent("GET /other", 20) == 0


def test_cli_serves_prints_the_config_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def drive(running: RunningSandbox) -> None:
        client = Client(running)
        seen["status"] = client.get("/crm/v8/Cases", fields="Subject").status_code
        seen["running"] = running

    monkeypatch.setattr(sandbox_cmd, "serve_until_interrupted", drive)
    now = "2026-11-01T12:00:00+08:00"
    monkeypatch.setenv("CRM_CONNECTOR_NOW", now)
    context = AppContext(config_path="missing.toml", as_json=True)
    result = CliRunner().invoke(
        sandbox_cmd.sandbox, ["--crm", "zoho", "--seed", "3", "--fault", "malformed=0.1"], obj=context
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert seen["status"] == 200 and data["base_url"] == seen["running"].base_url
    assert f'api_domain = "{data["base_url"]}"' in data["config"] and 'kind = "zoho"' in data["config"]
    assert data["credentials"]["refresh_token"] in data["config"]
    assert data["clinic"]["now"] == datetime.fromisoformat(now).astimezone(UTC).isoformat()
    assert data["faults"] == {"malformed": 0.1}
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{data['base_url']}/_admin/state", timeout=5)
    human = CliRunner().invoke(
        sandbox_cmd.sandbox, ["--crm", "zoho"], obj=AppContext(config_path="missing.toml", lang_override="zh")
    )
    assert human.exit_code == 0 and "沙箱" in human.output and "[sources.zoho]" in human.output
    bad = CliRunner().invoke(sandbox_cmd.sandbox, ["--crm", "zoho", "--fault", "boom=1"], obj=context)
    assert bad.exit_code == 2


def test_registry_lists_zoho() -> None:
    assert "zoho" in available_crms()
    app = create_app("zoho", generate_clinic(1, {"contacts": 5}, now=NOW))
    assert app.name == "zoho"
    assert sandbox_cmd.sandbox in sandbox_cmd.COMMANDS
    with pytest.raises(KeyError):
        create_app("salesforce", app.clinic)
