"""The scheduler and its jobs, in process: planned jobs and their options, the sync → metrics → alerts
chain, locks between jobs, cooperative stop, ``run --once`` and ``status`` — with injected clocks and
triggered jobs, never waiting in real time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fake_time import FakeTime

from connector import jobs
from connector.adapter import Cursor, DeletedPage, Page
from connector.cli import main
from connector.cli.demo_cmd import sample_clinic_folder
from connector.clock import fixed_clock
from connector.config import Config, ConfigError, load_config
from connector.jobs import STEPS, JobEnv, StopRequested, periods_to_refresh, run_chain, run_step, sync_one
from connector.mapping import load_mapping
from connector.scheduler import Daemon, cron_trigger, job_plan, next_run_times
from connector.store import Store, named_lock, open_store
from connector.store.locks import current_holder
from connector.store.schema import contacts, scorecards, sync_runs, sync_state
from connector.sync import sync_source

SHANGHAI = ZoneInfo("Asia/Shanghai")
PUSH = ["push"] if "push" in STEPS else []  # the push step, once its package is in
# Monday 2 November 2026, 10:07 in the clinic: early in the month, so October is recomputed too.
NOW = datetime(2026, 11, 2, 10, 7, tzinfo=SHANGHAI)


def write_config(folder: Path, store_url: str, schedule: str = "", sources: Sequence[str] = ("a",)) -> Path:
    text = f'[store]\nurl = "{store_url}"\n[clinic]\ntimezone = "Asia/Shanghai"\nlanguage = "en"\n'
    for name in sources:
        shutil.copytree(sample_clinic_folder(), folder / name)
        text += f'[sources.{name}]\nkind = "jsonl"\npath = "{name}"\n'
    path = folder / "connector.toml"
    path.write_text(text + schedule, encoding="utf-8")
    return path


def break_source(folder: Path, name: str) -> None:
    """Make one entity of a jsonl source unreadable, so its sync fails."""
    broken = folder / name / "tickets.jsonl"
    broken.unlink()
    broken.mkdir()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.dispose()


def env_for(config: Config, store: Store, **kwargs: Any) -> JobEnv:
    return JobEnv(config=config, store=store, clock=fixed_clock(NOW), **kwargs)


def job_runs(store: Store) -> list[tuple[str, str | None, str]]:
    """(job, source, status) of the job-level rows, in the order they were written."""
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(sync_runs.c.job, sync_runs.c.source, sync_runs.c.status)
            .where(sa.or_(sync_runs.c.job != "sync", sync_runs.c.entity.is_(None)))
            .order_by(sync_runs.c.id)
        )
        return [tuple(row) for row in rows]


# ---- the plan and the APScheduler jobs --------------------------------------------------------


def test_jobs_registered_with_ids_triggers_and_options_in_clinic_tz(tmp_path: Path) -> None:
    schedule = (
        '[schedule]\nsync = "0 8-18 * * 1-5"\nmetrics = "30 2 * * *"\npush = "45 * * * *"\n'
        'misfire_grace_seconds = 120\n[schedule.sources.b]\nsync = "*/5 * * * *"\n'
    )
    config = load_config(write_config(tmp_path, "sqlite://", schedule, sources=("a", "b", "c")))
    env = env_for(config, open_store("sqlite://"))
    jobs = {job.id: job for job in Daemon(env).jobs}

    assert set(jobs) == {"sync", "sync:b", "metrics", *PUSH}  # alerts are chained to sync
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time == 120
        assert job.trigger.timezone == SHANGHAI
    assert jobs["sync"].args == (env, ("a", "c"), ("alerts",))
    assert jobs["sync:b"].args == (env, ("b",), ("alerts",))
    assert jobs["metrics"].args == (env, "metrics")
    assert jobs["sync"].func is run_chain and jobs["metrics"].func is run_step

    friday_evening = datetime(2026, 10, 30, 18, 56, tzinfo=SHANGHAI)
    assert jobs["sync"].trigger.get_next_fire_time(None, friday_evening) == datetime(
        2026, 11, 2, 8, 0, tzinfo=SHANGHAI
    )
    assert jobs["sync:b"].trigger.get_next_fire_time(None, friday_evening) == datetime(
        2026, 10, 30, 19, 0, tzinfo=SHANGHAI
    )
    assert jobs["metrics"].trigger.get_next_fire_time(None, friday_evening) == datetime(
        2026, 10, 31, 2, 30, tzinfo=SHANGHAI
    )


def test_defaults_sync_every_15_minutes_and_chain_metrics_then_alerts(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "sqlite://"))
    job = job_plan(config)[0]
    assert [planned.id for planned in job_plan(config)] == ["sync", *PUSH]
    assert (job.id, job.cron, job.sources, job.steps) == (
        "sync",
        "*/15 * * * *",
        ("a",),
        ("metrics", "alerts"),
    )
    times = next_run_times(config, NOW)
    assert times == {
        "sync:a": datetime(2026, 11, 2, 10, 15, tzinfo=SHANGHAI),
        "metrics": datetime(2026, 11, 2, 10, 15, tzinfo=SHANGHAI),
        "alerts": datetime(2026, 11, 2, 10, 15, tzinfo=SHANGHAI),
        **{step: datetime(2026, 11, 2, 11, 0, tzinfo=SHANGHAI) for step in PUSH},  # hourly
    }


@pytest.mark.parametrize(
    ("schedule", "local_day", "labels"),
    [
        ("", "2026-11-02", ["2026-10", "2026-11"]),
        ("", "2026-11-03", ["2026-10", "2026-11"]),  # the third day: still within the default 3 days
        ("", "2026-11-04", ["2026-11"]),
        ("recompute_previous_days = 0\n", "2026-11-01", ["2026-11"]),
        ('metrics_periods = ["week", "month"]\n', "2026-11-10", ["2026-W45", "2026-W46", "2026-11"]),
    ],
)
def test_metrics_job_refreshes_the_current_period_and_late_data(
    tmp_path: Path, schedule: str, local_day: str, labels: list[str]
) -> None:
    config = load_config(write_config(tmp_path, "sqlite://", "[schedule]\n" + schedule))
    now = datetime.fromisoformat(f"{local_day}T00:30:00+08:00")  # just after local midnight
    assert [period.label for period in periods_to_refresh(config, now)] == labels


@pytest.mark.parametrize(
    ("weekday_field", "weekdays"),
    [
        ("0", {"Sunday"}),
        ("7", {"Sunday"}),
        ("sun", {"Sunday"}),
        ("1-5", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}),
        ("*/3", {"Sunday", "Wednesday", "Saturday"}),
        ("5-7", {"Friday", "Saturday", "Sunday"}),
        ("sat,0", {"Saturday", "Sunday"}),
    ],
)
def test_day_of_week_is_read_as_crontab_does(weekday_field: str, weekdays: set[str]) -> None:
    trigger = cron_trigger(f"0 9 * * {weekday_field}", SHANGHAI)
    fired, at = set(), NOW
    for _ in range(14):
        at = trigger.get_next_fire_time(None, at + timedelta(minutes=1))
        fired.add(f"{at:%A}")
        assert (at.hour, at.minute, at.utcoffset()) == (9, 0, timedelta(hours=8))
    assert fired == weekdays


@pytest.mark.parametrize(
    ("schedule", "key"),
    [
        ('[schedule]\nsync = "*/15 * *"\n', "schedule.sync"),
        ('[schedule]\nmetrics = "sometimes"\n', "schedule.metrics"),
        ('[schedule]\nalerts = "0 25 * * *"\n', "schedule.alerts"),
        ('[schedule]\nsync = "after_sync"\n', "schedule.sync"),
        ('[schedule]\nsynk = "off"\n', "schedule.synk"),
        ('[schedule.sources.a]\nsync = "0 9 * * 8"\n', "schedule.sources.a.sync"),
    ],
)
def test_bad_schedule_is_reported_with_its_key(tmp_path: Path, schedule: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(write_config(tmp_path, "sqlite://", schedule))


def test_schedule_for_an_unknown_source_is_a_usage_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite://", '[schedule.sources.nope]\nsync = "* * * * *"\n')
    for command in (["check"], ["status"], ["run"]):
        result = CliRunner().invoke(main, ["--config", str(path), *command])
        assert result.exit_code == 2 and "schedule.sources.nope" in result.output


# ---- the chain -------------------------------------------------------------------------------


def test_triggered_sync_job_runs_sync_then_metrics_then_alerts(tmp_path: Path, store: Store) -> None:
    config = load_config(write_config(tmp_path, store.url))
    job = next(job for job in Daemon(env_for(config, store)).jobs if job.id == "sync")
    outcomes = job.func(*job.args)

    assert [(o.job, o.status) for o in outcomes] == [
        ("sync", "success"),
        ("metrics", "success"),
        ("alerts", "success"),
    ]
    assert job_runs(store) == [
        ("sync", "a", "success"),
        ("metrics", None, "success"),
        ("alerts", None, "success"),
    ]
    with store.connect() as conn:
        entity_rows = (
            conn.execute(
                sa.select(sync_runs.c.id).where(sync_runs.c.entity.is_not(None), sync_runs.c.job == "sync")
            )
            .scalars()
            .all()
        )
        metrics_id = conn.execute(sa.select(sync_runs.c.id).where(sync_runs.c.job == "metrics")).scalar_one()
        periods = set(conn.execute(sa.select(scorecards.c.period)).scalars())
    assert len(entity_rows) == 6 and max(entity_rows) < metrics_id  # every page is in before scoring
    assert periods == {"2026-10", "2026-11"}  # early in November, October is recomputed too
    assert outcomes[0].counts["fetched"] == sum(run.counts.fetched for run in outcomes[0].runs) > 0


def test_steps_wait_for_a_successful_sync(tmp_path: Path, store: Store) -> None:
    config = load_config(write_config(tmp_path, store.url, sources=("a", "b")))
    break_source(tmp_path, "b")
    env = env_for(config, store)

    only_broken = run_chain(env, ["b"], ["metrics", "alerts"])
    assert [(o.job, o.source, o.status) for o in only_broken] == [("sync", "b", "failed")]
    assert "tickets" in (only_broken[0].error or "")

    both = run_chain(env, None, ["metrics", "alerts"])  # one source synced: the others' data is scored
    assert [(o.job, o.status) for o in both] == [
        ("sync", "success"),
        ("sync", "failed"),
        ("metrics", "success"),
        ("alerts", "success"),
    ]


def test_scheduled_sync_skips_a_source_another_holder_syncs(tmp_path: Path, store: Store) -> None:
    config = load_config(write_config(tmp_path, store.url))
    with named_lock(store, "sync:a"):
        outcomes = run_chain(env_for(config, store), None, ["metrics", "alerts"])
    [skipped] = outcomes  # nothing synced, so nothing to score
    assert (skipped.status, skipped.holder) == ("skipped", current_holder())
    assert job_runs(store) == [("sync", "a", "skipped")]
    with store.connect() as conn:
        error = conn.execute(sa.select(sync_runs.c.error)).scalar_one()
        assert conn.execute(sa.select(sa.func.count()).select_from(sync_state)).scalar() == 0
    assert "sync:a" in error and current_holder() in error


def test_step_waits_for_its_lock_then_runs(tmp_path: Path, store: Store) -> None:
    config = load_config(write_config(tmp_path, store.url))
    time = FakeTime()
    holder = ExitStack()
    holder.enter_context(named_lock(store, "job:metrics"))

    def sleep(seconds: float) -> None:
        time.sleep(seconds)
        holder.close()  # the other run finishes while we wait

    env = env_for(config, store, sleep=sleep, monotonic=lambda: time.now.timestamp())
    outcome = run_step(env, "metrics")
    assert outcome.status == "success" and len(time.sleeps) == 1
    assert job_runs(store) == [("metrics", None, "success")]


def test_step_skips_after_the_grace_time(tmp_path: Path, store: Store) -> None:
    config = load_config(write_config(tmp_path, store.url, "[schedule]\nmisfire_grace_seconds = 2\n"))
    time = FakeTime()
    env = env_for(config, store, sleep=time.sleep, monotonic=lambda: time.now.timestamp())
    with named_lock(store, "job:alerts"):
        outcome = run_step(env, "alerts")
    assert outcome.status == "skipped" and outcome.holder == current_holder()
    assert sum(time.sleeps) == pytest.approx(2.0)
    assert job_runs(store) == [("alerts", None, "skipped")]


def test_stop_request_cuts_a_lock_wait_short(tmp_path: Path, store: Store) -> None:
    config = load_config(write_config(tmp_path, store.url))
    env = env_for(config, store)
    env.stop.request()
    with pytest.raises(StopRequested):
        env.pause(3600)  # returns at once: a stop during a wait never holds up shutdown
    with named_lock(store, "sync:a"):
        outcome = sync_one(env, "a", wait=3600)
    assert outcome.status == "stopped"
    assert job_runs(store) == [("sync", "a", "stopped")]


# ---- cooperative stop in the sync engine -----------------------------------------------------

MAPPING = """
[entities.contacts]
object = "contacts"
[entities.contacts.columns]
external_id = "id"
updated_at = { path = "updated_at", transform = "iso_datetime" }
name = "name"

[entities.agents]
object = "agents"
[entities.agents.columns]
external_id = "id"
updated_at = { path = "updated_at", transform = "iso_datetime" }
"""


class PagedAdapter:
    """Four pages of contacts (cursor = pages handed out), then agents; records what was asked."""

    def __init__(self) -> None:
        self.pulls: list[tuple[str, Cursor | None]] = []
        self.deletion_pulls: list[str] = []
        self.api_calls = 0

    def entities(self) -> list[str]:
        return ["contacts", "agents"]

    def pull(self, entity: str, cursor: Cursor | None) -> Iterator[Page]:
        self.pulls.append((entity, cursor))
        for number in range((cursor or {}).get("page", 0) + 1, 5):
            self.api_calls += 1
            records = [
                {"id": f"{entity}-{number}-{i}", "updated_at": "2026-10-01T00:00:00+00:00"} for i in range(3)
            ]
            yield Page(records=records, cursor={"page": number})

    def deleted(self, entity: str, cursor: Cursor | None) -> Iterator[DeletedPage]:
        self.deletion_pulls.append(entity)
        return iter(())


def test_stop_commits_the_pages_fetched_and_resumes_after_them(tmp_path: Path, store: Store) -> None:
    """A stop request after page 2: no new page is requested, the pages already fetched (page 2 and
    what was read ahead of it) are committed in order, and the next run resumes after them.

    How far the read-ahead thread got when the stop came depends on timing; what must hold is that
    the committed pages are a prefix with the cursor at its end. The exact case (a stop while page 3
    is in flight commits pages 1-3) is pinned by tests/test_locks_e2e.py with a gated adapter.
    """
    (tmp_path / "m.toml").write_text(MAPPING, encoding="utf-8")
    mappings = load_mapping(tmp_path / "m.toml", SHANGHAI).entities
    adapter, stop = PagedAdapter(), []

    def on_page(run: Any) -> None:
        if run.counts.fetched == 6:  # page 2 committed: a SIGTERM arrives
            stop.append(True)

    clock = fixed_clock(NOW)
    [run] = sync_source(
        store, "s", adapter, mappings, clock=clock, on_page=on_page, should_stop=lambda: bool(stop)
    )
    committed = run.counts.fetched // 3
    assert (run.entity, run.status, run.counts.fetched) == ("contacts", "stopped", 3 * committed)
    assert 2 <= committed <= 4
    assert adapter.deletion_pulls == [] and [e for e, _ in adapter.pulls] == ["contacts"]  # agents not begun
    with store.connect() as conn:
        cursor = conn.execute(
            sa.select(sync_state.c.cursor).where(sync_state.c.entity == "contacts")
        ).scalar()
        statuses = conn.execute(sa.select(sync_runs.c.status)).scalars().all()
        stored = conn.execute(sa.select(contacts.c.external_id)).scalars().all()
    assert json.loads(cursor) == {"page": committed} and statuses == ["stopped"]
    assert sorted(stored) == sorted(f"contacts-{p}-{i}" for p in range(1, committed + 1) for i in range(3))

    again = sync_source(store, "s", adapter, mappings, clock=clock)
    assert adapter.pulls[-2] == ("contacts", {"page": committed})
    assert [(r.entity, r.status, r.counts.fetched) for r in again] == [
        ("contacts", "success", 12 - 3 * committed),
        ("agents", "success", 12),
    ]


class RetryingAdapter(PagedAdapter):
    """:class:`PagedAdapter` whose page 3 is rate limited: it waits out a long Retry-After first."""

    def __init__(self, sleep: Callable[[float], None]) -> None:
        super().__init__()
        self.sleep = sleep

    def pull(self, entity: str, cursor: Cursor | None) -> Iterator[Page]:
        for page in super().pull(entity, cursor):
            if page.cursor == {"page": 3}:
                self.sleep(600)  # as the transport does for a 429 with Retry-After: 600
            yield page


def test_a_stop_during_a_retry_wait_ends_the_entity_stopped_at_once(tmp_path: Path) -> None:
    """SIGTERM while page 3 waits out its Retry-After: the wait ends at once, pages 1-2 stay committed.

    An in-memory store reads without read-ahead, so the stop surely arrives during the wait (not at
    a page boundary, where the engine would see it first).
    """
    (tmp_path / "m.toml").write_text(MAPPING, encoding="utf-8")
    mappings = load_mapping(tmp_path / "m.toml", SHANGHAI).entities
    store = open_store("sqlite://")
    env = env_for(load_config(write_config(tmp_path, "sqlite://")), store)  # the stop-aware sleep

    def sigterm_while_waiting(seconds: float) -> None:
        env.stop.request()
        env.pause(seconds)

    adapter = RetryingAdapter(sigterm_while_waiting)
    [run] = sync_source(store, "s", adapter, mappings, clock=fixed_clock(NOW), should_stop=env.stop)
    assert (run.entity, run.status, run.error, run.counts.fetched) == ("contacts", "stopped", None, 6)
    assert [e for e, _ in adapter.pulls] == ["contacts"]  # agents not begun
    with store.connect() as conn:
        query = sa.select(sync_state.c.cursor).where(sync_state.c.entity == "contacts")
        cursor = conn.execute(query).scalar()
    store.dispose()
    assert json.loads(cursor) == {"page": 2}


def test_a_sync_job_gives_its_adapter_the_stop_aware_sleep(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write_config(tmp_path, store.url))
    env = env_for(config, store)
    given: list[Callable[[float], None]] = []
    real_build = jobs.build_source

    def build_source(*args: Any, **kwargs: Any) -> Any:
        given.append(kwargs["sleep"])
        return real_build(*args, **kwargs)

    monkeypatch.setattr(jobs, "build_source", build_source)
    assert sync_one(env, "a").status == "success"
    env.stop.request()
    with pytest.raises(StopRequested):
        given[0](3600)  # returns at once: retry waits never hold up a shutdown


# ---- the daemon and the CLI ------------------------------------------------------------------


def test_daemon_returns_at_once_when_stopped_before_start(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "sqlite://"))
    env = env_for(config, open_store("sqlite://"))
    env.stop.request()
    Daemon(env).run()  # would block forever if the stop request were lost


def test_sigterm_stops_the_daemon_after_the_running_job_finishes(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "sqlite://"))
    env = env_for(config, open_store("sqlite://"))
    daemon = Daemon(env)
    events: list[str] = []

    def long_job() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            env.stop.sleep(600)  # "the page in flight": ends as soon as the stop is requested
        except StopRequested:
            events.append("stop seen")
        events.append("job finished")

    # Due as soon as the scheduler starts; a repeating trigger like every planned job's.
    daemon.scheduler.add_job(long_job, "interval", hours=1, next_run_time=datetime.now(SHANGHAI), id="probe")
    before = signal.getsignal(signal.SIGTERM)
    with env.stop.on_signals(then=daemon.shutdown):
        daemon.run()
    events.append("daemon returned")
    assert events == ["stop seen", "job finished", "daemon returned"]
    assert signal.getsignal(signal.SIGTERM) is before


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


PINNED = {"CRM_CONNECTOR_NOW": NOW.isoformat()}


def test_run_once_runs_the_chain_and_records_every_run(tmp_path: Path, store: Store) -> None:
    path = write_config(tmp_path, store.url)
    code, output = cli("--config", str(path), "--json", "run", "--once", env=PINNED)
    assert code == 0, output
    chain = [
        ("sync", "success"),
        ("metrics", "success"),
        ("alerts", "success"),
        *((p, "success") for p in PUSH),
    ]
    assert [(o["job"], o["status"]) for o in json.loads(output)] == chain
    assert [(job, status) for job, _, status in job_runs(store)] == chain

    code, output = cli("--config", str(path), "--lang", "en", "run", "--once", env=PINNED)
    assert code == 0 and "Run summary" in output and "metrics" in output


def test_run_once_exits_1_when_a_job_fails_and_honours_off(tmp_path: Path, store: Store) -> None:
    path = write_config(tmp_path, store.url, '[schedule]\nalerts = "off"\npush = "off"\n')
    break_source(tmp_path, "a")
    code, output = cli("--config", str(path), "--json", "run", "--once", env=PINNED)
    assert code == 1
    assert [(o["job"], o["status"]) for o in json.loads(output)] == [("sync", "failed")]

    shutil.rmtree(tmp_path / "a" / "tickets.jsonl")
    shutil.copy(sample_clinic_folder() / "tickets.jsonl", tmp_path / "a" / "tickets.jsonl")
    code, output = cli("--config", str(path), "--json", "run", "--once", env=PINNED)
    assert code == 0
    assert [o["job"] for o in json.loads(output)] == ["sync", "metrics"]  # alerts are off


def test_status_shows_last_result_failures_in_a_row_and_next_run(tmp_path: Path, store: Store) -> None:
    schedule = '[schedule]\nunhealthy_after_failures = 2\n[schedule.sources.b]\nsync = "0 9 * * 1"\n'
    path = write_config(tmp_path, store.url, schedule, sources=("a", "b"))
    break_source(tmp_path, "b")
    for _ in range(2):
        cli("--config", str(path), "run", "--once", env=PINNED)

    code, output = cli("--config", str(path), "--json", "status", env=PINNED)
    assert code == 0, output
    data = json.loads(output)
    jobs = {job["key"]: job for job in data["jobs"]}
    assert list(jobs) == ["sync:a", "sync:b", "metrics", "alerts", *PUSH]
    assert jobs["sync:b"]["last_status"] == "failed" and jobs["sync:b"]["consecutive_failures"] == 2
    assert jobs["sync:b"]["last_success"] is None and "tickets" in jobs["sync:b"]["last_error"]
    assert jobs["sync:a"]["last_status"] == "success" and jobs["sync:a"]["consecutive_failures"] == 0
    assert datetime.fromisoformat(jobs["sync:a"]["last_success"]) == NOW
    assert datetime.fromisoformat(jobs["sync:a"]["next_run"]) == datetime(
        2026, 11, 2, 10, 15, tzinfo=SHANGHAI
    )
    assert datetime.fromisoformat(jobs["sync:b"]["next_run"]) == datetime(2026, 11, 9, 9, 0, tzinfo=SHANGHAI)
    assert (
        jobs["metrics"]["schedule"] == "after_sync"
        and jobs["metrics"]["next_run"] == jobs["sync:a"]["next_run"]
    )
    assert data["failing"] == [
        {
            "key": "sync:b",
            "consecutive_failures": 2,
            "unhealthy": True,
            "last_error": jobs["sync:b"]["last_error"],
        }
    ]
    assert {run["entity"] for run in data["runs"]} >= {"tickets", "contacts"}  # entity rows only

    code, output = cli("--config", str(path), "--lang", "en", "status", env=PINNED)
    assert code == 0 and "Failing jobs:" in output and "sync:b: failed 2 time(s) in a row" in output
    assert "2026-11-09 09:00" in output  # next run, in the clinic's time zone
