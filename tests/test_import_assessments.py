"""``import assessments``: CSV/XLSX files of exam, audit and rating scores into the store.

Agents (seeded below): zoho z-1001 李娜 and sharecrm s-78 李娜 share an email (one person in two
CRMs), z-1002 王强, sharecrm s-77 张敏, and z-1003 who left (deleted). The clinic is in Asia/Shanghai
(UTC+8, no DST), and "now" is 2026-10-20 12:00 local.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from openpyxl import Workbook

from connector.assessments import ImportFileError, import_assessments
from connector.cli import main
from connector.store import Store, open_store, upsert
from connector.store.schema import assessments, sync_runs

DATA = Path(__file__).parent / "data"
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 20, 12, 0, tzinfo=TZ)
SEEDED = datetime(2026, 9, 1, tzinfo=UTC)


def _agent(source: str, external_id: str, name: str, email: str, phone: str, deleted: bool = False) -> dict:
    return {
        "source": source,
        "external_id": external_id,
        "name": name,
        "email": email,
        "phone": phone,
        "department": None,
        "role": None,
        "active": True,
        "updated_at": SEEDED,
        "deleted_at": SEEDED if deleted else None,
        "synced_at": SEEDED,
        "raw": json.dumps({"id": external_id}),
    }


AGENTS = {
    "zoho": [
        _agent("zoho", "z-1001", "李娜", "li.na@clinic.cn", "+86 138-0013-8000"),
        _agent("zoho", "z-1002", "王强", "Wang.Qiang@clinic.cn", "13900139000"),
        _agent("zoho", "z-1003", "赵离", "left@clinic.cn", "13600136000", deleted=True),
    ],
    "sharecrm": [
        _agent("sharecrm", "s-77", "张敏", "zhang.min@clinic.cn", "137 0013 7000"),
        _agent("sharecrm", "s-78", "李娜", "LI.NA@clinic.cn", "13800138000"),
    ],
}


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = open_store(db_url)
    with store.begin() as conn:
        for rows in AGENTS.values():
            upsert(conn, "agents", rows)
    yield store
    store.dispose()


def _rows(store: Store) -> list[dict]:
    with store.begin() as conn:
        query = sa.select(assessments).order_by(
            assessments.c.source, assessments.c.agent_id, assessments.c.kind
        )
        return [dict(row) for row in conn.execute(query).mappings()]


def _runs(store: Store) -> list[dict]:
    with store.begin() as conn:
        return [dict(r) for r in conn.execute(sa.select(sync_runs).order_by(sync_runs.c.id)).mappings()]


def _import(store: Store, path: Path, **options: object):
    return import_assessments(store, path, tz=TZ, now=NOW, **options)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---- function API ------------------------------------------------------------------------------


def test_good_csv_is_imported_with_agent_resolution_and_clinic_time(store: Store) -> None:
    result = _import(store, DATA / "assessments_good.csv")

    assert (result.rows, result.valid, result.inserted, result.updated, result.unchanged) == (4, 4, 4, 0, 0)
    assert result.errors == [] and result.written
    got = {(r["source"], r["agent_id"], r["kind"]): r for r in _rows(store)}
    assert set(got) == {
        ("zoho", "z-1002", "knowledge_exam"),  # by email, case-insensitive
        ("sharecrm", "s-77", "accuracy_audit"),  # by phone, digits only
        ("zoho", "z-1002", "politeness_audit"),  # by external id; "Politeness Audit" normalised
        ("sharecrm", "s-77", "self"),
    }
    exam = got[("zoho", "z-1002", "knowledge_exam")]
    # A date is 00:00 in the clinic's zone: 2026-10-05 00:00 +08:00 = 2026-10-04 16:00 UTC.
    assert exam["assessed_at"] == _utc(2026, 10, 4, 16, 0)
    assert exam["updated_at"] == exam["assessed_at"]
    assert exam["synced_at"] == NOW.astimezone(UTC)
    assert exam["score"] == 92.0 and exam["assessor"] == "Dr. Chen"
    assert json.loads(exam["raw"]) == {
        "agent": "wang.qiang@clinic.cn",
        "kind": "knowledge_exam",
        "score": "92",
        "assessed_at": "2026-10-05",
        "assessor": "Dr. Chen",
        "remarks": "",
    }
    # A naive date-time is clinic-local: 14:30 +08:00 = 06:30 UTC; an offset is respected.
    assert got[("sharecrm", "s-77", "accuracy_audit")]["assessed_at"] == _utc(2026, 10, 6, 6, 30)
    assert got[("sharecrm", "s-77", "accuracy_audit")]["score"] == 88.5
    assert got[("zoho", "z-1002", "politeness_audit")]["assessed_at"] == _utc(2026, 10, 7, 1, 0)
    assert got[("sharecrm", "s-77", "self")]["assessed_at"] == _utc(2026, 10, 7, 16, 0)
    assert got[("sharecrm", "s-77", "self")]["assessor"] is None

    [run] = _runs(store)
    assert (run["job"], run["entity"], run["status"], run["source"]) == (
        "import",
        "assessments",
        "success",
        None,
    )
    assert (run["fetched"], run["inserted"], run["updated"], run["unchanged"], run["quarantined"]) == (
        4,
        4,
        0,
        0,
        0,
    )


def test_reimport_changes_nothing_and_a_corrected_score_updates_in_place(
    store: Store, tmp_path: Path
) -> None:
    first = _import(store, DATA / "assessments_good.csv")
    before = _rows(store)

    again = _import(store, DATA / "assessments_good.csv")

    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 4)
    assert _rows(store) == before  # same ids, same synced_at: the upsert left every row alone
    assert first.run_id != again.run_id

    corrected = tmp_path / "corrected.csv"
    corrected.write_text(
        (DATA / "assessments_good.csv").read_text().replace("knowledge_exam,92,", "knowledge_exam,94,"),
        encoding="utf-8",
    )
    fixed = _import(store, corrected)
    assert (fixed.inserted, fixed.updated, fixed.unchanged) == (0, 1, 3)
    rows = _rows(store)
    assert len(rows) == 4
    assert {r["external_id"] for r in rows} == {r["external_id"] for r in before}
    assert [r["score"] for r in rows if r["kind"] == "knowledge_exam"] == [94.0]


EXPECTED_BAD = [
    (3, "agent", "agent_unknown"),
    (4, "agent", "agent_ambiguous"),
    (5, "kind", "kind_unknown"),
    (6, "score", "score_range"),
    (7, "score", "score_not_number"),
    # row 8 is blank: skipped, but it keeps its number, as in the spreadsheet
    (9, "assessed_at", "date_invalid"),
    (10, "assessed_at", "date_future"),
    (11, "agent", "agent_unknown"),  # the agent was deleted in the CRM
    (11, "score", "empty"),
    (11, "assessed_at", "empty"),
    (12, "agent", "duplicate_row"),
]


def test_bad_rows_are_all_reported_and_nothing_is_written(store: Store) -> None:
    result = _import(store, DATA / "assessments_bad.csv")

    assert [(e.row, e.column, e.key) for e in result.errors] == EXPECTED_BAD
    assert not result.written and result.invalid_rows == 9
    assert (result.rows, result.valid, result.inserted) == (11, 2, 0)  # 12 rows, one blank
    assert _rows(store) == []
    ambiguous = next(e for e in result.errors if e.key == "agent_ambiguous")
    assert "sharecrm:s-78 (李娜)" in ambiguous.message("en") and "zoho:z-1001 (李娜)" in ambiguous.message(
        "en"
    )
    assert (
        next(e for e in result.errors if e.row == 12).message("zh")
        == "与第 2 行重复（客户经理、类型、时间、考核人相同）"
    )
    [run] = _runs(store)
    assert (run["status"], run["fetched"], run["inserted"], run["quarantined"]) == ("failed", 11, 0, 9)
    assert run["error"] == "assessments_bad.csv: 9 invalid row(s)"


def test_skip_invalid_imports_the_good_rows(store: Store) -> None:
    result = _import(store, DATA / "assessments_bad.csv", skip_invalid=True)

    assert result.written and result.inserted == 2 and result.invalid_rows == 9
    assert [(r["agent_id"], r["kind"], r["score"]) for r in _rows(store)] == [
        ("s-77", "peer", 75.0),
        ("z-1002", "knowledge_exam", 92.0),  # row 2; its duplicate (row 12) was not imported
    ]
    assert _runs(store)[0]["status"] == "partial"


def test_source_option_narrows_agent_lookup(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "li_na.csv"
    path.write_text(
        "agent,kind,score,assessed_at\nli.na@clinic.cn,policy_exam,85,2026-10-05\n", encoding="utf-8"
    )

    assert [e.key for e in _import(store, path).errors] == ["agent_ambiguous"]
    result = _import(store, path, source="sharecrm")

    assert result.inserted == 1
    assert [(r["source"], r["agent_id"]) for r in _rows(store)] == [("sharecrm", "s-78")]
    assert _runs(store)[-1]["source"] == "sharecrm"


def test_chinese_headers_kinds_and_dates_in_a_gb18030_csv(store: Store) -> None:
    result = _import(store, DATA / "assessments_zh_gb18030.csv")

    assert result.errors == [] and result.inserted == 2
    rows = {r["agent_id"]: r for r in _rows(store)}
    assert (rows["z-1001"]["kind"], rows["z-1001"]["assessor"]) == ("knowledge_exam", "陈主任")
    assert rows["z-1001"]["assessed_at"] == _utc(2026, 10, 4, 16, 0)  # 2026年10月5日 00:00 +08:00
    assert rows["z-1002"]["kind"] == "politeness_audit"  # matched by "+86 139 0013 9000"
    assert rows["z-1002"]["assessed_at"] == _utc(2026, 10, 6, 2, 0)
    assert json.loads(rows["z-1001"]["raw"])["工号"] == "z-1001"


def _xlsx(path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(["客户经理", "类型", "分数", "考核日期", "考核人"])
    sheet.append(["zhang.min@clinic.cn", "accuracy_audit", 97, datetime(2026, 10, 9, 15, 45), "QA"])  # row 2
    sheet.append([13900139000, "政策法规考核", 78.5, date(2026, 10, 10), None])  # row 3: phone as a number
    sheet.append([])  # row 4: blank
    sheet.append(["z-1002", "supervisor", 101, date(2026, 10, 11), "Dr. Chen"])  # row 5: out of range
    book.save(path)
    return path


def test_xlsx_file(store: Store, tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "scores.xlsx")

    rejected = _import(store, path)
    assert [(e.row, e.column, e.key) for e in rejected.errors] == [(5, "分数", "score_range")]
    assert _rows(store) == []

    result = _import(store, path, skip_invalid=True)
    assert result.inserted == 2
    rows = {r["agent_id"]: r for r in _rows(store)}
    # A date-time cell is clinic-local: 15:45 +08:00 = 07:45 UTC; a date cell is local midnight.
    assert (rows["s-77"]["kind"], rows["s-77"]["assessed_at"]) == ("accuracy_audit", _utc(2026, 10, 9, 7, 45))
    assert (rows["z-1002"]["kind"], rows["z-1002"]["score"]) == ("policy_exam", 78.5)
    assert rows["z-1002"]["assessed_at"] == _utc(2026, 10, 9, 16, 0)
    assert json.loads(rows["z-1002"]["raw"])["考核日期"] == "2026-10-10T00:00:00"

    again = _import(store, path, skip_invalid=True)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)


@pytest.mark.parametrize(
    ("content", "name", "key"),
    [
        ("agent,kind,score\nz-1002,self,80\n", "no_date.csv", "missing_columns"),
        ("agent,工号,kind,score,date\n", "two_agents.csv", "duplicate_column"),
        ("\n\n", "empty.csv", "no_header"),
        ("agent,kind,score,date\n", "scores.txt", "unsupported_format"),
        ("agent,kind,score,date\n", "renamed.xlsx", "unreadable"),  # a CSV renamed to .xlsx
    ],
)
def test_unusable_files_are_refused_as_a_whole(
    store: Store, tmp_path: Path, content: str, name: str, key: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ImportFileError) as caught:
        _import(store, path)
    assert caught.value.key == key
    assert _rows(store) == [] and _runs(store) == []


# ---- CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def cli(store: Store, tmp_path: Path):
    config = tmp_path / "connector.toml"
    config.write_text(
        f'[store]\nurl = "{store.engine.url.render_as_string(hide_password=False)}"\n'
        '[clinic]\ntimezone = "Asia/Shanghai"\nlanguage = "en"\n',
        encoding="utf-8",
    )

    def run(*args: str):
        return CliRunner().invoke(
            main,
            ["--config", str(config), *args],
            env={"CRM_CONNECTOR_NOW": NOW.isoformat(), "COLUMNS": "250"},
        )

    return run


def test_cli_imports_and_reimports_idempotently(cli, store: Store, tmp_path: Path) -> None:
    path = shutil.copy(DATA / "assessments_good.csv", tmp_path / "good.csv")

    first = cli("--json", "import", "assessments", str(path))
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert (data["rows"], data["inserted"], data["unchanged"], data["written"], data["errors"]) == (
        4,
        4,
        0,
        True,
        [],
    )

    second = cli("import", "assessments", str(path))
    assert second.exit_code == 0, second.output
    assert "good.csv: 4 row(s) read; 0 new, 0 updated, 4 unchanged." in second.output
    assert len(_rows(store)) == 4
    assert [r["synced_at"] for r in _rows(store)] == [NOW.astimezone(UTC)] * 4


def test_cli_rejects_a_file_with_bad_rows_and_lists_them(cli, store: Store) -> None:
    result = cli("--json", "import", "assessments", str(DATA / "assessments_bad.csv"))

    assert result.exit_code == 1
    data = json.loads(result.output)
    assert not data["written"] and data["inserted"] == 0
    assert [(e["row"], e["column"], e["code"]) for e in data["errors"]] == EXPECTED_BAD
    assert data["errors"][0]["reason"] == "no agent matches nobody@clinic.cn"
    assert _rows(store) == []

    human = cli("--lang", "zh", "import", "assessments", str(DATA / "assessments_bad.csv"))
    assert human.exit_code == 1
    assert "找不到与 nobody@clinic.cn 匹配的客户经理" in human.output
    assert "9 行有误，未导入任何数据" in human.output


def test_cli_skip_invalid(cli, store: Store) -> None:
    result = cli("import", "assessments", "--skip-invalid", str(DATA / "assessments_bad.csv"))

    assert result.exit_code == 0, result.output
    assert "9 invalid row(s) skipped." in result.output
    assert "2 new" in result.output
    assert len(_rows(store)) == 2


def test_cli_refuses_unknown_source_and_bad_file(cli, store: Store, tmp_path: Path) -> None:
    unknown = cli("import", "assessments", "--source", "nope", str(DATA / "assessments_good.csv"))
    assert unknown.exit_code == 2 and "unknown source 'nope'" in unknown.output

    path = tmp_path / "scores.csv"
    path.write_text("agent,kind,score\nz-1002,self,80\n", encoding="utf-8")
    missing = cli("import", "assessments", str(path))
    assert missing.exit_code == 1 and "missing column(s): assessed_at" in missing.output
    assert _rows(store) == []
