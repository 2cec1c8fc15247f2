"""The jobs ``crm-connector run`` schedules, as module-level functions of a :class:`JobEnv`.

The chain is sync → metrics → alerts → push (:data:`STEPS` after sync, in order). Every run is one
``sync_runs`` row whose ``job`` is the job's name; ``status`` is ``success``, ``failed``,
``stopped`` (a stop request ended it cleanly, or the CRM's daily call quota is spent; the next run
resumes) or ``skipped`` (the same work was under way in another
process). A sync writes one row per source with ``entity`` NULL (the job's result for that source,
counts summed) besides the engine's one row per entity.

Overlap: a source is synced under the store lock ``sync:<source>``, so a scheduled sync, a manual
``crm-connector sync`` and a second ``run`` process never work on one source at once; a scheduled
sync that finds it taken is skipped. A step holds ``job:<name>`` and waits for it up to the misfire
grace time: a run that starts later than that would have been dropped as missed anyway.

A step that follows sync is one function and one :data:`STEPS` entry. The function records its own
``sync_runs`` row (``job`` = its name), failed or not, and raises on failure; :func:`run_step` takes
the lock and turns the exception into a failed :class:`JobOutcome`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from connector.adapter import StopRequested
from connector.alerts import run_alerts
from connector.calendar import BusinessCalendar
from connector.clock import Clock
from connector.delivery import deliver_alerts
from connector.metrics import Period, compute_series, current_period, store_scorecards
from connector.push import run_push
from connector.push.run import push_status, record_push_run
from connector.runtime import build_source
from connector.schedule_settings import OFF
from connector.store import LockBusy, Store, named_lock
from connector.store.schema import sync_runs
from connector.sync import EntityRun, PageCallback, RunCounts, sync_source

if TYPE_CHECKING:
    from connector.config import Config

log = logging.getLogger(__name__)


class StopSignal:
    """A stop request (SIGTERM/SIGINT, or a test), asked by jobs between pages. Call it to ask."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def __call__(self) -> bool:
        return self._event.is_set()

    def request(self) -> None:
        self._event.set()

    def sleep(self, seconds: float) -> None:
        """Wait like ``time.sleep``, but give up with :class:`StopRequested` when a stop comes in."""
        if self._event.wait(seconds):
            raise StopRequested

    @contextmanager
    def on_signals(self, then: Callable[[], None] | None = None) -> Iterator[None]:
        """Turn SIGTERM/SIGINT into a stop request (then call ``then`` once), restoring the old handlers.

        The Python-level handler does nothing: it runs in the main thread wherever that thread was
        interrupted, possibly holding a lock that shutting down needs (a scheduler submitting a job).
        Python's C-level handler writes the signal to a wakeup pipe instead, and a watcher thread
        makes the request and calls ``then`` from ordinary thread context. Only the main thread may
        install handlers; elsewhere this does nothing.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        watcher = threading.Thread(target=self._watch, args=(read_end, then), name="stop-signal", daemon=True)
        previous = {sig: signal.signal(sig, _wake_only) for sig in _STOP_SIGNALS}
        previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        watcher.start()
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_fd)
            os.close(write_end)  # the watcher reads end-of-file and returns
            watcher.join()
            os.close(read_end)

    def _watch(self, read_end: int, then: Callable[[], None] | None) -> None:
        while data := os.read(read_end, 1):
            if data[0] in _STOP_SIGNALS and not self():
                self.request()
                name = signal.Signals(data[0]).name
                log.warning("%s received: stopping after the pages already fetched", name)
                if then is not None:
                    then()


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _wake_only(_signum: int, _frame: FrameType | None) -> None:
    """Installed for SIGTERM/SIGINT so they no longer terminate; the wakeup pipe does the work."""


@dataclass
class JobEnv:
    """What every job needs. ``sleep``/``monotonic`` drive lock waits (tests inject fakes)."""

    config: Config
    store: Store
    clock: Clock
    stop: StopSignal = field(default_factory=StopSignal)
    sleep: Callable[[float], None] | None = None  # None: stop-aware real sleep
    monotonic: Callable[[], float] = time.monotonic

    def pause(self, seconds: float) -> None:
        (self.sleep or self.stop.sleep)(seconds)


@dataclass(frozen=True)
class JobOutcome:
    """The result of one job run (for a sync: of one source, with its entity runs)."""

    job: str
    status: str  # success | failed | stopped | skipped
    source: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None
    runs: tuple[EntityRun, ...] = ()
    holder: str | None = None  # skipped: who held the lock, as the store recorded it

    @property
    def key(self) -> str:
        return job_key(self.job, self.source)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "source": self.source,
            "status": self.status,
            "counts": dict(self.counts),
            "error": self.error,
            "holder": self.holder,
        }


Step = Callable[[JobEnv], JobOutcome]


def job_key(job: str, source: str | None) -> str:
    """How status and /healthz name a job: ``sync:<source>`` per source, else the job's name."""
    return f"{job}:{source}" if source else job


def scheduled_jobs(config: Config) -> list[tuple[str, str | None]]:
    """(job, source) of everything ``run`` does: a sync per configured source, then each step."""
    return [("sync", name) for name in config.sources] + [(step, None) for step in STEPS]


def once_steps(config: Config) -> list[str]:
    """The steps ``run --once`` chains after sync: all but those scheduled ``off``."""
    return [step for step in STEPS if config.schedule.step_schedule(step) != OFF]


# ---- sync_runs rows ---------------------------------------------------------------------------

_COUNTS = tuple(asdict(RunCounts()))


def record_start(store: Store, job: str, *, now: datetime, source: str | None = None) -> int:
    """Insert a ``running`` row for a job run; :func:`record_finish` completes it."""
    with store.begin() as conn:
        return conn.execute(
            sa.insert(sync_runs).values(
                job=job, source=source, started_at=now, status="running", **dict.fromkeys(_COUNTS, 0)
            )
        ).inserted_primary_key[0]


def record_finish(
    store: Store, run_id: int, *, status: str, now: datetime, error: str | None = None, **counts: int
) -> None:
    with store.begin() as conn:
        conn.execute(
            sa.update(sync_runs)
            .where(sync_runs.c.id == run_id)
            .values(status=status, finished_at=now, error=error, **counts)
        )


def _record_now(env: JobEnv, job: str, source: str | None, status: str, error: str | None) -> None:
    now = env.clock()
    record_finish(
        env.store, record_start(env.store, job, now=now, source=source), status=status, now=now, error=error
    )


def _skipped(env: JobEnv, job: str, source: str | None, busy: LockBusy) -> JobOutcome:
    log.warning("%s skipped: %s", job_key(job, source), busy)
    _record_now(env, job, source, "skipped", str(busy))
    return JobOutcome(job, "skipped", source, error=str(busy), holder=busy.holder)


def _stopped_waiting(env: JobEnv, job: str, source: str | None) -> JobOutcome:
    log.info("%s stopped while waiting for its lock", job_key(job, source))
    _record_now(env, job, source, "stopped", None)
    return JobOutcome(job, "stopped", source)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ---- sync -------------------------------------------------------------------------------------


def _lock_source(
    stack: ExitStack, env: JobEnv, name: str, wait: float, on_busy: Callable[[LockBusy], None] | None
) -> None:
    lock = f"sync:{name}"
    try:
        stack.enter_context(named_lock(env.store, lock, wait=False, now=env.clock))
    except LockBusy as busy:
        if wait <= 0:
            raise
        if on_busy is not None:
            on_busy(busy)
        stack.enter_context(
            named_lock(env.store, lock, timeout=wait, sleep=env.pause, clock=env.monotonic, now=env.clock)
        )


def _overall(runs: Sequence[EntityRun]) -> str:
    statuses = {run.status for run in runs}
    return next((s for s in ("failed", "stopped") if s in statuses), "success")


def sync_one(
    env: JobEnv,
    name: str,
    *,
    wait: float = 0.0,
    entities: Sequence[str] | None = None,
    full: bool = False,
    on_page: PageCallback | None = None,
    on_busy: Callable[[LockBusy], None] | None = None,
) -> JobOutcome:
    """Sync one source under its lock; ``wait`` seconds for a busy lock (0: skip at once)."""
    with ExitStack() as stack:
        try:
            _lock_source(stack, env, name, wait, on_busy)
        except LockBusy as busy:
            return _skipped(env, "sync", name, busy)
        except StopRequested:
            return _stopped_waiting(env, "sync", name)
        run_id = record_start(env.store, "sync", now=env.clock(), source=name)
        try:
            live = build_source(env.config, name, env.store, clock=env.clock, sleep=env.pause)
            runs = sync_source(
                env.store,
                name,
                live.adapter,
                live.mappings,
                entities=entities,
                full=full,
                clock=env.clock,
                on_page=on_page,
                should_stop=env.stop,
            )
        except Exception as exc:  # the source could not even be set up (mapping file, adapter options)
            log.warning("sync of %s failed: %s", name, exc)
            record_finish(env.store, run_id, status="failed", now=env.clock(), error=_error(exc))
            return JobOutcome("sync", "failed", name, error=_error(exc))
        status = _overall(runs)
        counts = {key: sum(getattr(run.counts, key) for run in runs) for key in _COUNTS}
        error = "; ".join(f"{run.entity}: {run.error}" for run in runs if run.error) or None
        record_finish(env.store, run_id, status=status, now=env.clock(), error=error, **counts)
        log.info("sync of %s: %s, %d fetched", name, status, counts["fetched"])
        return JobOutcome("sync", status, name, counts, error, tuple(runs))


def sync_sources(env: JobEnv, names: Sequence[str] | None = None, **options: Any) -> list[JobOutcome]:
    """Sync ``names`` (default: every configured source) one after another, until a stop request."""
    outcomes = []
    for name in env.config.sources if names is None else names:
        if env.stop():
            break
        outcomes.append(sync_one(env, name, **options))
    return outcomes


# ---- steps ------------------------------------------------------------------------------------


def periods_to_refresh(config: Config, now: datetime) -> list[Period]:
    """The current period of each configured granularity, preceded by the previous one early in it."""
    tz, schedule = config.clinic.tz, config.schedule
    today = now.astimezone(tz).date()
    periods: list[Period] = []
    for granularity in schedule.metrics_periods:
        current = current_period(now, granularity, tz)
        if (today - current.first).days < schedule.recompute_previous_days:
            periods.append(current.previous())
        periods.append(current)
    return periods


def metrics(env: JobEnv) -> JobOutcome:
    """Recompute and store the scorecards of :func:`periods_to_refresh` in one transaction.

    In the ``sync_runs`` row, ``inserted`` counts the scorecards written.
    """
    config, now = env.config, env.clock()
    run_id = record_start(env.store, "metrics", now=now)
    try:
        periods = periods_to_refresh(config, now)
        calendar = BusinessCalendar.from_config(config.clinic.calendar, config.clinic.tz)
        # Computed from the store (periods spread over connections), then stored in one transaction.
        series = compute_series(env.store, config.scorecard, calendar, config.clinic.tz, periods, as_of=now)
        with env.store.begin() as conn:
            stored = sum(
                store_scorecards(conn, period, cards, computed_at=now)
                for period, cards in zip(periods, series, strict=True)
            )
    except Exception as exc:
        record_finish(env.store, run_id, status="failed", now=env.clock(), error=_error(exc))
        raise
    record_finish(env.store, run_id, status="success", now=env.clock(), inserted=stored)
    return JobOutcome("metrics", "success", counts={"scorecards": stored, "periods": len(periods)})


def alerts(env: JobEnv) -> JobOutcome:
    """Evaluate the alert rules (:func:`connector.alerts.run_alerts` records the row), then deliver
    what is due (:func:`connector.delivery.deliver_alerts`; its failures wait in ``alert_deliveries``
    for their retry and do not fail the step)."""
    result = run_alerts(env.store, env.config, now=env.clock())
    delivery = deliver_alerts(env.store, env.config, clock=env.clock)
    counts = {
        "opened": len(result.opened),
        "escalated": len(result.escalated),
        "resolved": len(result.resolved),
        "open": len(result.open_alerts),
        **delivery.counts(),
    }
    return JobOutcome("alerts", "success", counts=counts)


def push(env: JobEnv) -> JobOutcome:
    """Write changed scorecards into the CRMs (:func:`connector.push.run_push`) and record the run.

    Failed records (or a CRM that could not be reached) make the run ``failed``; they are planned
    again next run. In the ``sync_runs`` row, ``inserted``/``updated`` count the CRM's answers.
    """
    started = env.clock()
    try:
        report = run_push(env.store, env.config, clock=env.clock, sleep=env.pause)
    except Exception as exc:  # configuration: a [push] source or field map that cannot be used
        record_finish(
            env.store,
            record_start(env.store, "push", now=started),
            status="failed",
            now=env.clock(),
            error=_error(exc),
        )
        raise
    record_push_run(env.store, report, started=started, finished=env.clock())
    counts = {k: v for k, v in report.counts().items() if k != "failed_targets"}
    error = "; ".join(report.errors()[:5]) or None
    return JobOutcome("push", push_status(report), counts=counts, error=error)


#: The jobs that follow sync, in chain order.
STEPS: dict[str, Step] = {"metrics": metrics, "alerts": alerts, "push": push}


def run_step(env: JobEnv, name: str) -> JobOutcome:
    """Run one step under its ``job:<name>`` lock; never raises (the outcome says what happened)."""
    grace = env.config.schedule.misfire_grace_seconds
    with ExitStack() as stack:
        try:
            stack.enter_context(
                named_lock(
                    env.store,
                    f"job:{name}",
                    timeout=grace,
                    sleep=env.pause,
                    clock=env.monotonic,
                    now=env.clock,
                )
            )
        except LockBusy as busy:
            return _skipped(env, name, None, busy)
        except StopRequested:
            return _stopped_waiting(env, name, None)
        try:
            outcome = STEPS[name](env)
        except Exception as exc:  # the step recorded its failed row before raising
            log.warning("%s failed: %s", name, exc)
            return JobOutcome(name, "failed", error=_error(exc))
        log.info("%s: %s %s", name, outcome.status, dict(outcome.counts))
        return outcome


def run_chain(env: JobEnv, sources: Sequence[str] | None, steps: Sequence[str]) -> list[JobOutcome]:
    """Sync ``sources`` (None: all), then run ``steps`` in order if at least one source synced.

    The steps read the store, which every sync leaves consistent, so one failed source does not hold
    back the others' alerts; a step's failure does not stop the next step either. Nothing new to
    score (every source failed, was skipped or stopped) means no step runs.
    """
    outcomes = sync_sources(env, sources)
    if outcomes and not any(outcome.status == "success" for outcome in outcomes):
        log.info("no source synced; not running %s", ", ".join(steps) or "any step")
        return outcomes
    for step in steps:
        if env.stop():
            break
        outcomes.append(run_step(env, step))
    return outcomes
