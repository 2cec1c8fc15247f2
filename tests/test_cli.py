"""The real CLI, end to end: init, check, sync, status, demo, exit codes, secrets kept out of output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.cli.demo_cmd import sample_clinic_folder
from connector.sandbox.jsonl_export import export_jsonl, sample_clinic

SECRET = "s3cr3t-value-that-must-never-show"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def write_config(folder: Path, store_url: str, extra: str = "") -> Path:
    shutil.copytree(sample_clinic_folder(), folder / "data")
    path = folder / "connector.toml"
    path.write_text(
        f'[store]\nurl = "{store_url}"\n[clinic]\nlanguage = "en"\n'
        f'[sources.clinic_a]\nkind = "jsonl"\npath = "data"\n{extra}',
        encoding="utf-8",
    )
    return path


def test_bundled_sample_is_what_the_exporter_writes(tmp_path: Path) -> None:
    export_jsonl(sample_clinic(), tmp_path)
    for bundled in sample_clinic_folder().glob("*.jsonl"):
        assert (tmp_path / bundled.name).read_text(encoding="utf-8") == bundled.read_text(encoding="utf-8")


def test_init_writes_starter_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "connector.toml"
    code, _ = run("--config", str(target), "init")
    assert code == 0 and "[sources." in target.read_text(encoding="utf-8")
    target.write_text("# edited by the admin\n", encoding="utf-8")
    code, output = run("--config", str(target), "--lang", "en", "init")
    assert code == 2 and "--force" in output
    assert target.read_text(encoding="utf-8") == "# edited by the admin\n"
    code, _ = run("--config", str(target), "init", "--force")
    assert code == 0 and "[store]" in target.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('[clinic]\ntimezone = "Mars/Olympus"\n', "clinic.timezone"),
        ('[store]\nurl = "mysql://x"\n', "store.url"),
        ('[sources.a]\nkind = "jsonl"\npath = "d"\npage_sise = 3\n', "sources.a.page_sise"),
        ('[sources.a]\nkind = "nosuchcrm"\n', "sources.a.kind"),
        ('[sources.a]\nkind = "jsonl"\npath = "${NOT_SET_ANYWHERE}"\n', "sources.a.path"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, body: str, key: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    for args in (["check"], ["sync"], ["status"]):
        code, output = run("--config", str(path), *args)
        assert code == 2, output
        assert str(path) in output and key in output


def test_secret_never_printed_even_in_json_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[store]\nurl = "postgresql+psycopg://app:${DB_PASSWORD}@127.0.0.1:1/x"\n[clinic]\nlanguage = "xx"\n',
        encoding="utf-8",
    )
    code, output = run("--config", str(path), "--json", "check", env={"DB_PASSWORD": SECRET})
    assert code == 2
    assert SECRET not in output and "clinic.language" in json.loads(output)["error"]


def test_sync_then_status_reports_counts_and_quarantine(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, sqlite_url)
    code, output = run("--config", str(config), "--json", "sync")
    assert code == 0, output
    runs = {r["entity"]: r for r in json.loads(output)}
    assert runs["tickets"]["fetched"] == 300 and runs["tickets"]["quarantined"] == 4
    assert runs["tickets"]["inserted"] == 296 and all(r["status"] == "success" for r in runs.values())

    code, output = run("--config", str(config), "--json", "sync")
    again = {r["entity"]: r for r in json.loads(output)}
    assert code == 0 and again["tickets"]["fetched"] == 0  # cursors: nothing new to read

    code, output = run("--config", str(config), "--json", "sync", "--full", "--entity", "tickets")
    full = json.loads(output)
    assert [r["entity"] for r in full] == ["tickets"]
    assert full[0]["unchanged"] == 296 and full[0]["inserted"] == 0 and full[0]["updated"] == 0

    code, output = run("--config", str(config), "--json", "status")
    status = json.loads(output)
    assert code == 0
    quarantine = {q["entity"]: q for q in status["quarantine"]}
    assert quarantine["tickets"]["count"] == 4
    reasons = " ".join(e["reason"] for e in quarantine["tickets"]["examples"])
    assert "owner_id" in reasons and "status" in reasons
    assert {r["entity"] for r in status["runs"]} == {
        "agents",
        "contacts",
        "tickets",
        "follow_ups",
        "calls",
        "surveys",
    }


def test_sync_unknown_source_is_a_usage_error(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, sqlite_url)
    code, output = run("--config", str(config), "sync", "--source", "nope")
    assert code == 2 and "nope" in output


def test_failed_source_exits_1_and_is_recorded(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, sqlite_url)
    broken = tmp_path / "data" / "tickets.jsonl"
    broken.unlink()
    broken.mkdir()  # reading it fails (permissions would not stop root, who runs CI)
    code, output = run("--config", str(config), "--json", "sync")
    assert code == 1
    runs = {r["entity"]: r for r in json.loads(output)}
    assert runs["tickets"]["status"] == "failed" and runs["tickets"]["error"]
    assert runs["contacts"]["status"] == "success"  # one failed entity does not stop the others


def test_check_reports_store_revision_and_source(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, sqlite_url)
    code, output = run("--config", str(config), "--json", "check")
    data = json.loads(output)
    assert code == 0 and data["store_revision"] and data["sources"][0]["ok"] is True


def test_db_current_and_upgrade(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, sqlite_url)
    code, output = run("--config", str(config), "--json", "db", "upgrade")
    assert code == 0
    head = json.loads(output)["revision"]
    code, output = run("--config", str(config), "--json", "db", "current")
    assert code == 0 and json.loads(output) == {"revision": head, "head": head}


def test_demo_syncs_both_sandbox_crms_into_one_store(tmp_path: Path) -> None:
    code, output = run("--lang", "en", "demo", "--workdir", str(tmp_path / "demo"))
    assert code == 0, output
    assert "Sync summary" in output and "zoho_demo" in output and "sharecrm_demo" in output
    assert "Quarantine (records that could not be mapped)" in output and "Quarantine is empty" not in output
    code, output = run("--config", str(tmp_path / "demo" / "connector.toml"), "--json", "status")
    status = json.loads(output)
    assert {r["source"] for r in status["runs"]} == {"zoho_demo", "sharecrm_demo"}
    assert all(r["status"] == "success" for r in status["runs"])
    assert sum(q["count"] for q in status["quarantine"]) > 0
