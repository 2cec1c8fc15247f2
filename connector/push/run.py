"""``crm-connector push`` and the scheduled push job: plan every target, then write (or only show).

Targets are ``[push] sources``, by default every configured source whose CRM kind ships a push field
map. Each target is planned and written on its own: one CRM being down does not hold back the
other, and its records simply stay planned for the next run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from connector.adapter import PushResult, StopRequested
from connector.clock import Clock
from connector.http import TransportError
from connector.push.fieldmap import PushMapError, bundled_write_map_path, load_write_map
from connector.push.planner import PlannedRecord, TargetPlan, plan_target
from connector.push.writer import record_results, write_plan
from connector.store.schema import sync_runs

if TYPE_CHECKING:
    from connector.config import Config, SourceConfig
    from connector.store import Store


class PushError(ValueError):
    """The push cannot run as configured; the message names the config key."""


@dataclass(frozen=True)
class TargetReport:
    """One target's plan and, unless it was a dry run, the CRM's answers."""

    plan: TargetPlan
    results: list[PushResult] | None = None  # None: not written (dry run, or the target failed)
    error: str | None = None
    api_calls: int = 0

    @property
    def failures(self) -> list[tuple[PlannedRecord, PushResult]]:
        return [(r, res) for r, res in zip(self.plan.records, self.results or [], strict=False) if not res.ok]

    @property
    def written(self) -> int:
        return sum(1 for result in self.results or [] if result.ok)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.plan.source,
            "kind": self.plan.kind,
            "object": self.plan.object,
            "planned": [record.as_json() for record in self.plan.records],
            "unchanged": self.plan.unchanged,
            "written": self.written,
            "failed": [
                {"record_key": record.record_key, "code": result.code, "message": result.message}
                for record, result in self.failures
            ],
            "error": self.error,
            "api_calls": self.api_calls,
        }


@dataclass(frozen=True)
class PushReport:
    dry_run: bool
    targets: list[TargetReport] = field(default_factory=list)
    stopped: bool = False  # a stop request cut a retry wait short; the remaining records stay planned

    @property
    def ok(self) -> bool:
        return all(t.error is None and not t.failures for t in self.targets)

    def counts(self) -> dict[str, int]:
        return {
            "planned": sum(len(t.plan.records) for t in self.targets),
            "unchanged": sum(t.plan.unchanged for t in self.targets),
            "written": sum(t.written for t in self.targets),
            "failed": sum(len(t.failures) for t in self.targets),
            "failed_targets": sum(1 for t in self.targets if t.error),
            "api_calls": sum(t.api_calls for t in self.targets),
        }

    def errors(self) -> list[str]:
        """One line per failed target and per failed record, with the CRM's reason."""
        lines = [f"{t.plan.source}: {t.error}" for t in self.targets if t.error]
        for target in self.targets:
            lines += [
                f"{target.plan.source} {record.record_key}: {result.code}: {result.message}"
                for record, result in target.failures
            ]
        return lines

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "stopped": self.stopped,
            "counts": self.counts(),
            "targets": [target.as_json() for target in self.targets],
        }


def push_targets(config: Config) -> list[str]:
    """The sources scorecards go to (``[push] sources``, else every source that can take them)."""
    settings = config.push  # the source names in it were checked when the config was loaded
    if settings.sources is None:
        return [
            name
            for name, source in config.sources.items()
            if name in settings.field_maps or bundled_write_map_path(source.kind) is not None
        ]
    return list(settings.sources)


def write_object(source: SourceConfig) -> str:
    """The module/object scorecards go to: the source's ``write.module`` (Zoho) or ``write.object``
    (ShareCRM), the one target its adapter applies the upsert key to."""
    write = getattr(source.options, "write", None)
    for name in ("module", "object"):
        value = getattr(write, name, None)
        if isinstance(value, str):
            return value
    raise PushError(f"sources.{source.name}: a {source.kind!r} source has no write target for scorecards")


def run_push(
    store: Store,
    config: Config,
    *,
    clock: Clock,
    dry_run: bool = False,
    period: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PushReport:
    """Plan every target and, unless ``dry_run``, write the changed records and log each answer.

    A dry run makes no CRM call at all (not even for a token). Raises :class:`PushError` for a
    configuration problem; a CRM failure is reported in the target's ``error`` instead. ``sleep`` is
    what the adapters wait with between retries; when it raises :class:`StopRequested`, the push ends
    ``stopped`` there. The target being written keeps its records planned, including any the CRM had
    already taken: the next run writes them again by their key, which changes nothing.
    """
    targets: list[TargetReport] = []
    for name in push_targets(config):
        source = config.sources[name]
        try:
            write_map = load_write_map(source.kind, config.push.field_maps.get(name))
        except PushMapError as exc:
            raise PushError(f"push.field_maps.{name}: {exc}") from None
        with store.connect() as conn:
            plan = plan_target(conn, config, name, write_object(source), write_map, period=period)
        if dry_run or not plan.records:
            targets.append(TargetReport(plan))
            continue
        try:
            targets.append(_write(store, config, plan, clock=clock, sleep=sleep))
        except StopRequested:
            return PushReport(dry_run=dry_run, targets=targets, stopped=True)
    return PushReport(dry_run=dry_run, targets=targets)


def _write(
    store: Store,
    config: Config,
    plan: TargetPlan,
    *,
    clock: Clock,
    sleep: Callable[[float], None],
) -> TargetReport:
    from connector.runtime import build_source  # imports the config package, which imports us

    try:
        live = build_source(config, plan.source, store, clock=clock, sleep=sleep)
    except Exception as exc:  # the source cannot be set up (mapping file, adapter options)
        return TargetReport(plan, error=f"{type(exc).__name__}: {exc}")
    try:
        results = write_plan(live.adapter, plan)
    except TransportError as exc:  # nothing was written: every record stays planned
        return TargetReport(plan, error=f"{type(exc).__name__}: {exc}", api_calls=live.adapter.api_calls)
    with store.begin() as conn:
        record_results(conn, plan, results, now=clock())
    return TargetReport(plan, results=results, api_calls=live.adapter.api_calls)


def push_status(report: PushReport) -> str:
    """``failed`` when a target or a record failed, else ``stopped`` or ``success``."""
    if not report.ok:
        return "failed"
    return "stopped" if report.stopped else "success"


def record_push_run(store: Store, report: PushReport, *, started: datetime, finished: datetime) -> None:
    """The ``sync_runs`` row of a push (job ``push``), its status from :func:`push_status`.

    ``fetched`` counts the records considered, ``inserted``/``updated`` the CRM's answers,
    ``unchanged`` the records skipped because ``push_log`` already had their values.
    """
    counts = report.counts()
    actions = [r.action for t in report.targets for r in t.results or [] if r.ok]
    errors = report.errors()
    error = "; ".join(errors[:5]) + (f" (+{len(errors) - 5} more)" if len(errors) > 5 else "")
    with store.begin() as conn:
        conn.execute(
            sa.insert(sync_runs).values(
                job="push",
                started_at=started,
                finished_at=finished,
                status=push_status(report),
                fetched=counts["planned"] + counts["unchanged"],
                inserted=actions.count("insert"),
                updated=len(actions) - actions.count("insert"),
                unchanged=counts["unchanged"],
                deleted=0,
                quarantined=0,
                api_calls=counts["api_calls"],
                error=error or None,
            )
        )
