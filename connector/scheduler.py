"""The daemon behind ``crm-connector run``: APScheduler 3.x, and the only module that imports it.

Jobs come from ``[schedule]`` (:mod:`connector.schedule_settings`) as a plan of plain data
(:func:`job_plan`), so ``status`` can compute next run times in its own process from the same
cron expressions, without asking a running scheduler. The scheduler keeps its jobs in memory (each
process plans its own; processes never share a job store), gives every job an explicit id with
``replace_existing``, folds missed runs into one (``coalesce``), never overlaps a job with itself
(``max_instances=1``) and drops runs later than the misfire grace time. What keeps *processes*
apart is the store lock each job takes (:mod:`connector.jobs`).

Stopping: SIGTERM/SIGINT request a stop (:class:`connector.jobs.StopSignal`) and shut the
scheduler down without waiting; :meth:`Daemon.run` then waits for the running jobs, which finish
their page in flight and record themselves ``stopped``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_SCHEDULER_START,
    JobEvent,
    SchedulerEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from connector.jobs import STEPS, JobEnv, job_key, run_chain, run_step
from connector.schedule_settings import AFTER_SYNC, OFF

if TYPE_CHECKING:
    from connector.config import Config

log = logging.getLogger(__name__)

_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab(5) numbering: 0 (and 7) = Sunday
_DOW_ITEM = re.compile(r"^(?:(?P<all>\*)|(?P<a>\w+)(?:-(?P<b>\w+))?)(?:/(?P<step>\d+))?$")


def _cron_day(token: str) -> int:
    token = token.lower()
    if token in _CRON_DAYS:
        return _CRON_DAYS.index(token)
    if token.isdigit() and int(token) <= 7:
        return int(token)
    raise ValueError(f"{token!r} is not a day of week (0-7 or sun-sat)")


def _day_of_week(field: str) -> str:
    """A crontab day-of-week field as APScheduler 3 reads it: day names, so 0 stays Sunday."""
    days: set[int] = set()
    for item in field.split(","):
        match = _DOW_ITEM.match(item)
        if match is None:
            raise ValueError(f"day of week {item!r} not understood")
        first, last = (0, 6) if match["all"] else (_cron_day(match["a"]), _cron_day(match["b"] or match["a"]))
        if match["step"] and not match["b"] and not match["all"]:
            last = 6  # "2/3" = from Tuesday every third day
        if last < first:
            raise ValueError(f"day of week range {item!r} runs backwards")
        days |= {day % 7 for day in range(first, last + 1, int(match["step"] or 1))}
    if days == set(range(7)):
        return "*"
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def cron_trigger(expr: str, tz: tzinfo = UTC) -> CronTrigger:
    """The trigger of a five-field crontab expression in ``tz``; ValueError explains a bad one."""
    fields = expr.split()
    try:
        if len(fields) != 5:
            raise ValueError(f"expected 5 fields, got {len(fields)}")
        minute, hour, day, month, weekday = fields
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=_day_of_week(weekday), timezone=tz
        )
    except ValueError as exc:
        raise ValueError(
            f"{expr!r} is not a cron expression 'minute hour day month weekday' (e.g. '*/15 * * * *'): {exc}"
        ) from None


def next_fire(expr: str, tz: tzinfo, now: datetime) -> datetime | None:
    """When ``expr`` fires next after ``now`` (aware), in ``tz``."""
    return cron_trigger(expr, tz).get_next_fire_time(None, now.astimezone(tz))


@dataclass(frozen=True)
class PlannedJob:
    """One scheduler job: a sync of ``sources`` chained with ``steps``, or a lone step."""

    id: str
    cron: str
    sources: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()

    @property
    def is_sync(self) -> bool:
        return bool(self.sources)


def job_plan(config: Config) -> list[PlannedJob]:
    """The jobs ``[schedule]`` asks for, with ids ``sync``, ``sync:<source>``, ``metrics`` …"""
    schedule = config.schedule
    chained = tuple(step for step in STEPS if schedule.step_schedule(step) == AFTER_SYNC)
    plan = []
    shared = tuple(name for name in config.sources if name not in schedule.sources)
    if shared and schedule.sync != OFF:
        plan.append(PlannedJob("sync", schedule.sync, sources=shared, steps=chained))
    for name, own in schedule.sources.items():
        if own.sync != OFF:
            plan.append(PlannedJob(f"sync:{name}", own.sync, sources=(name,), steps=chained))
    for step in STEPS:
        cron = schedule.step_schedule(step)
        if cron not in (OFF, AFTER_SYNC):
            plan.append(PlannedJob(step, cron, steps=(step,)))
    return plan


def next_run_times(config: Config, now: datetime) -> dict[str, datetime | None]:
    """Next run per job key (:func:`connector.jobs.job_key`); None = not scheduled.

    A step chained to sync runs next after the earliest next sync.
    """
    tz = config.clinic.tz
    plan = job_plan(config)
    fires = {job.id: next_fire(job.cron, tz, now) for job in plan}
    times: dict[str, datetime | None] = {job_key("sync", name): None for name in config.sources}
    for job in plan:
        for name in job.sources:
            times[job_key("sync", name)] = fires[job.id]
    next_sync = min((fires[job.id] for job in plan if job.is_sync and fires[job.id]), default=None)
    for step in STEPS:
        chained = config.schedule.step_schedule(step) == AFTER_SYNC
        times[job_key(step, None)] = next_sync if chained else fires.get(step)
    return times


class Daemon:
    """A BlockingScheduler with the planned jobs, and the executor a stop waits for."""

    def __init__(self, env: JobEnv) -> None:
        self.env = env
        self.plan = job_plan(env.config)
        grace = env.config.schedule.misfire_grace_seconds
        self._executor = ThreadPoolExecutor(max_workers=max(len(self.plan), 1))
        self.scheduler = BlockingScheduler(
            timezone=env.config.clinic.tz,
            jobstores={"default": MemoryJobStore()},
            executors={"default": self._executor},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": grace},
        )
        for planned in self.plan:
            func, args = (
                (run_chain, (env, planned.sources, planned.steps))
                if planned.is_sync
                else (run_step, (env, planned.steps[0]))
            )
            self.scheduler.add_job(
                func,
                cron_trigger(planned.cron, env.config.clinic.tz),
                args=args,
                id=planned.id,
                name=planned.id,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=grace,
            )
        self.scheduler.add_listener(
            self._on_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self.scheduler.add_listener(self._on_start, EVENT_SCHEDULER_START)

    @property
    def jobs(self) -> list[Job]:
        return list(self.scheduler.get_jobs())

    def run(self) -> None:
        """Block until a stop is requested (see :meth:`shutdown`), then wait for the running jobs."""
        self.scheduler.start()
        self._executor.shutdown(wait=True)

    def shutdown(self) -> None:
        """Stop starting jobs; callable from any thread, before the scheduler runs or while it does."""
        with contextlib.suppress(SchedulerNotRunningError):  # not started yet: _on_start sees the stop
            self.scheduler.shutdown(wait=False)

    def _on_start(self, _event: SchedulerEvent) -> None:
        if self.env.stop():  # requested before start(): it would otherwise block forever
            self.shutdown()

    def _on_job_event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning(
                "job %s missed its run (more than the grace time late); waiting for the next", event.job_id
            )
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log.warning("job %s still running from its last run; this run is skipped", event.job_id)
        else:
            log.error("job %s crashed: %s", event.job_id, getattr(event, "exception", None))
