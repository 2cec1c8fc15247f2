"""``/healthz`` and ``/metrics`` from a real HTTP server on 127.0.0.1, computed from the store."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from connector.cli.demo_cmd import sample_clinic_folder
from connector.clock import fixed_clock
from connector.config import Config, load_config
from connector.health import HealthServer, job_health
from connector.jobs import STEPS, JobEnv, record_finish, record_start, run_chain
from connector.store import Store, named_lock, open_store
from connector.store.schema import alerts, sync_runs

NOW = datetime(2026, 11, 2, 10, 7, tzinfo=ZoneInfo("Asia/Shanghai"))
SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r'(?:\{(?P<labels>[a-zA-Z_]\w*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_]\w*="(?:[^"\\\n]|\\.)*")*)\})?'
    r" (?P<value>-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)$"
)
BOOT = "from connector.cli import main; main()"
LABEL = re.compile(r'([a-zA-Z_]\w*)="((?:[^"\\\n]|\\.)*)"')


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.dispose()


def make_config(folder: Path, store: Store, schedule: str = "") -> Config:
    shutil.copytree(sample_clinic_folder(), folder / "a")
    path = folder / "connector.toml"
    url = store.engine.url.render_as_string(hide_password=False)
    path.write_text(
        f'[store]\nurl = "{url}"\n[sources.a]\nkind = "jsonl"\npath = "a"\n[schedule]\n{schedule}',
        encoding="utf-8",
    )
    return load_config(path)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[HealthServer] = []

    def start(store: Store, config: Config) -> str:
        server = HealthServer(store, config, "127.0.0.1", 0).start()
        servers.append(server)
        host, port = server.address
        return f"http://{host}:{port}"

    yield start
    for server in servers:
        server.close()


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def run(store: Store, job: str, status: str, *, source: str | None = None, minutes: int = 0) -> None:
    at = NOW + timedelta(minutes=minutes)
    record_finish(store, record_start(store, job, now=at, source=source), status=status, now=at)


def test_healthz_turns_503_after_n_failures_in_a_row_and_back(
    tmp_path: Path, store: Store, serve: Any
) -> None:
    config = make_config(tmp_path, store, "unhealthy_after_failures = 2\n")
    base = serve(store, config)
    run(store, "sync", "success", source="a")
    run(store, "alerts", "success", minutes=1)
    run(store, "alerts", "failed", minutes=2)
    run(store, "alerts", "skipped", minutes=3)  # another process had it: neither breaks nor extends a streak

    code, content_type, text = get(base + "/healthz")
    body = json.loads(text)
    assert code == 200 and content_type == "application/json" and body["status"] == "ok"
    assert set(body["jobs"]) == {"sync:a", *STEPS}
    assert datetime.fromisoformat(body["jobs"]["sync:a"]["last_success"]) == NOW
    assert body["jobs"]["alerts"] == {
        "last_status": "skipped",
        "last_success": (NOW + timedelta(minutes=1)).astimezone(ZoneInfo("UTC")).isoformat(),
        "consecutive_failures": 1,
    }
    assert body["jobs"]["metrics"] == {"last_status": None, "last_success": None, "consecutive_failures": 0}

    run(store, "alerts", "failed", minutes=4)
    code, _, text = get(base + "/healthz")
    assert code == 503 and json.loads(text)["failing"] == ["alerts"]

    run(store, "alerts", "success", minutes=5)
    code, _, text = get(base + "/healthz")
    assert code == 200 and json.loads(text)["jobs"]["alerts"]["consecutive_failures"] == 0


def test_entity_rows_are_parts_of_a_sync_not_runs_of_their_own(tmp_path: Path, store: Store) -> None:
    config = make_config(tmp_path, store)
    run(store, "sync", "success", source="a")
    with store.begin() as conn:  # a failed entity inside that run, as the sync engine writes it
        conn.execute(
            sa.insert(sync_runs).values(
                job="sync", source="a", entity="tickets", started_at=NOW, status="failed", error="HTTP 503"
            )
        )
    run(store, "sync", "failed", source="other")  # another source's streak is its own
    [sync_a] = [health for health in job_health(store, config) if health.key == "sync:a"]
    assert (sync_a.last_status, sync_a.consecutive_failures, sync_a.last_success) == ("success", 0, NOW)


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* \S", line), line
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        labels = frozenset(LABEL.findall(match["labels"] or ""))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_metrics_text_parses_and_counts_what_the_store_holds(
    tmp_path: Path, store: Store, serve: Any
) -> None:
    config = make_config(tmp_path, store)
    env = JobEnv(config=config, store=store, clock=fixed_clock(NOW))
    outcomes = run_chain(env, None, ["metrics", "alerts"])
    assert [o.status for o in outcomes] == ["success"] * 3
    with named_lock(store, "sync:a"):
        run_chain(env, None, [])  # recorded as skipped
    with store.begin() as conn:  # a rule name that needs escaping in a label
        conn.execute(
            sa.insert(alerts).values(
                fingerprint="odd",
                rule='say "hi"\\now',
                severity="warning",
                source="a",
                opened_at=NOW,
                updated_at=NOW,
            )
        )
        open_by_rule = conn.execute(
            sa.select(alerts.c.rule, alerts.c.severity, sa.func.count())
            .where(alerts.c.resolved_at.is_(None))
            .group_by(alerts.c.rule, alerts.c.severity)
        ).all()

    code, content_type, text = get(serve(store, config) + "/metrics")
    assert code == 200 and content_type.startswith("text/plain; version=0.0.4")
    samples = parse_metrics(text)

    assert value(samples, "crm_connector_job_runs_total", job="sync", status="success") == 1
    assert value(samples, "crm_connector_job_runs_total", job="sync", status="skipped") == 1
    assert value(samples, "crm_connector_job_runs_total", job="metrics", status="success") == 1
    records = {"job": "sync", "source": "a", "entity": "tickets"}
    assert value(samples, "crm_connector_records_total", **records, outcome="fetched") == 300
    assert value(samples, "crm_connector_records_total", **records, outcome="inserted") == 296
    assert value(samples, "crm_connector_records_total", **records, outcome="quarantined") == 4
    sync_counts = outcomes[0].counts
    assert value(samples, "crm_connector_api_calls_total", job="sync", source="a") == sync_counts["api_calls"]
    assert value(samples, "crm_connector_errors_total", job="sync", source="a") == 0
    assert len(open_by_rule) > 1
    for rule, severity, count in open_by_rule:
        assert (
            value(
                samples,
                "crm_connector_open_alerts",
                rule=rule.replace("\\", "\\\\").replace('"', '\\"'),
                severity=severity,
            )
            == count
        )
    assert value(samples, "crm_connector_job_consecutive_failures", job="sync", source="a") == 0
    last_success = value(samples, "crm_connector_job_last_success_timestamp_seconds", job="metrics")
    assert last_success == NOW.timestamp()
    families = set(re.findall(r"^# TYPE (\S+) (counter|gauge)$", text, flags=re.MULTILINE))
    assert {name for name, _ in families} == {name for name, _ in samples}


def test_unknown_path_is_404_and_an_unreadable_store_is_unhealthy(
    tmp_path: Path, store: Store, serve: Any
) -> None:
    config = make_config(tmp_path, store)
    base = serve(store, config)
    assert get(base + "/nope")[0] == 404
    with store.begin() as conn:
        conn.execute(sa.text("DROP TABLE sync_runs"))
    code, _, text = get(base + "/healthz")
    assert code == 503 and json.loads(text)["status"] == "error"


def test_run_daemon_serves_health_and_exits_0_on_sigterm(tmp_path: Path, store: Store) -> None:
    config = make_config(
        tmp_path, store, 'sync = "0 0 1 1 *"\nmetrics = "off"\nalerts = "off"\npush = "off"\n'
    )
    run(store, "sync", "success", source="a")
    daemon = subprocess.Popen(
        [sys.executable, "-c", BOOT, "--config", str(config.path), "--json", "run", "--health-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={key: value for key, value in os.environ.items() if key != "CRM_CONNECTOR_NOW"},
    )
    assert daemon.stdout is not None
    started = json.loads(daemon.stdout.readline() or "{}")  # printed once the server listens
    assert started.get("event") == "started", daemon.communicate(timeout=60)
    assert [job["id"] for job in started["jobs"]] == ["sync"]
    host, port = started["health"]["host"], started["health"]["port"]
    assert host == "127.0.0.1"

    code, _, text = get(f"http://{host}:{port}/healthz")
    assert code == 200 and "sync:a" in json.loads(text)["jobs"]

    daemon.send_signal(signal.SIGTERM)
    out, err = daemon.communicate(timeout=120)
    assert daemon.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {"event": "stopped"}
