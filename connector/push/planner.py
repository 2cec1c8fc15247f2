"""The push plan: which scorecard records each CRM needs, and which of them changed since last time.

A record's *desired values* are the field map applied to a stored scorecard. The plan compares
their hash with the hash of the values last written **successfully** to the same record
(``push_log``, keyed by target source, object and record key) and keeps only the records that
differ. A record whose last write failed has no successful hash for its current values, so it is
planned again on every run until it succeeds: failures are retried, never dropped.

Who gets which scorecard: a scorecard is written to the CRM of each of its members. An agent merged
across two CRMs (``[scorecard] merge_agents_by``) therefore sees the same combined scorecard in
both, each time under that CRM's own user id; a scorecard is never written to a CRM the agent has
no user in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connector.metrics import parse_period
from connector.metrics.agents import load_directory
from connector.push.fieldmap import WriteMap
from connector.store.schema import push_log, scorecards

if TYPE_CHECKING:
    from connector.config import Config


@dataclass(frozen=True)
class PlannedRecord:
    """One record to write, with what was last written successfully (``previous``; None: never)."""

    record_key: str
    agent_id: str
    period: str
    values: dict[str, Any]
    values_hash: str
    previous: dict[str, Any] | None
    remote_id: str | None

    def changes(self) -> list[tuple[str, Any, Any]]:
        """(field, old, new) of every field that differs from the last successful write (for a new
        record: every field with a value)."""
        before = self.previous or {}
        return [
            (name, before.get(name), value)
            for name, value in self.values.items()
            if before.get(name) != value
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "record_key": self.record_key,
            "agent_id": self.agent_id,
            "period": self.period,
            "new": self.previous is None,
            "changes": [{"field": f, "old": old, "new": new} for f, old, new in self.changes()],
        }


@dataclass(frozen=True)
class TargetPlan:
    """What one source needs written: the changed records of its scorecard object."""

    source: str
    kind: str
    object: str
    records: list[PlannedRecord]
    unchanged: int


def values_hash(values: Mapping[str, Any]) -> str:
    """Hash of a record's values as sent (key order does not matter)."""
    text = json.dumps(values, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def plan_target(
    conn: Connection,
    config: Config,
    source: str,
    object_name: str,
    write_map: WriteMap,
    *,
    period: str | None = None,
) -> TargetPlan:
    """The plan for one target source; ``period`` (a label) narrows it to one period."""
    desired = _desired_records(conn, config, source, write_map, period)
    last = _last_successes(conn, source, object_name)
    records, unchanged = [], 0
    for key, (agent_id, label, values) in sorted(desired.items()):
        digest = values_hash(values)
        before = last.get(key)
        if before is not None and before[0] == digest:
            unchanged += 1
            continue
        records.append(
            PlannedRecord(
                record_key=key,
                agent_id=agent_id,
                period=label,
                values=values,
                values_hash=digest,
                previous=before[1] if before else None,
                remote_id=before[2] if before else None,
            )
        )
    kind = config.sources[source].kind
    return TargetPlan(source, kind, object_name, records, unchanged)


def _desired_records(
    conn: Connection, config: Config, source: str, write_map: WriteMap, period: str | None
) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """record key → (agent id in this CRM, period label, CRM values) of every scorecard it gets."""
    settings = config.push
    directory = load_directory(conn, config.scorecard.merge_agents_by)
    rows = _scorecard_rows(conn, config, period)
    if settings.per == "agent":
        rows = _latest_per_agent(rows)
    desired: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for row in rows:
        for member_source, agent_id in directory.members((row.source, row.agent_id)):
            if member_source != source:
                continue
            key = agent_id if settings.per == "agent" else f"{agent_id}_{row.period}"
            canonical = _canonical(row, agent_id, key)
            desired[key] = (agent_id, row.period, write_map.scorecards.render(canonical))
    return desired


def _scorecard_rows(conn: Connection, config: Config, period: str | None) -> list[sa.Row[Any]]:
    query = sa.select(scorecards).order_by(
        scorecards.c.period_start, scorecards.c.source, scorecards.c.agent_id
    )
    if period is not None:
        return list(conn.execute(query.where(scorecards.c.period == period)))
    wanted = set(config.push.periods)
    tz = config.clinic.tz
    return [row for row in conn.execute(query) if _granularity(row.period, tz) in wanted]


def _granularity(label: str, tz: Any) -> str | None:
    try:
        return parse_period(label, tz).granularity
    except ValueError:
        return None


def _latest_per_agent(rows: Iterable[sa.Row[Any]]) -> list[sa.Row[Any]]:
    """Each scorecard agent's most recent period only (rows come ordered by period start)."""
    latest: dict[tuple[str, str], sa.Row[Any]] = {}
    for row in rows:
        latest[(row.source, row.agent_id)] = row
    return list(latest.values())


def _canonical(row: sa.Row[Any], agent_id: str, key: str) -> dict[str, Any]:
    """A stored scorecard by the canonical names of the field map."""
    return {
        **json.loads(row.metrics),
        "quality": row.quality,
        "efficiency": row.efficiency,
        "knowledge": row.knowledge,
        "composite": row.composite,
        "bonus_pct": row.bonus_pct,
        "rank": row.rank,
        "trend": row.trend,
        "record_key": key,
        "agent_id": agent_id,
        "agent_name": row.agent_name,
        "period": row.period,
    }


def _last_successes(
    conn: Connection, source: str, object_name: str
) -> dict[str, tuple[str, dict[str, Any], str | None]]:
    """record key → (hash, values, remote id) of its newest successful write."""
    newest = (
        sa.select(sa.func.max(push_log.c.id).label("id"))
        .where(
            push_log.c.target == source,
            push_log.c.object == object_name,
            push_log.c.result == "success",
        )
        .group_by(push_log.c.record_key)
        .subquery()
    )
    rows = conn.execute(
        sa.select(
            push_log.c.record_key, push_log.c.values_hash, push_log.c["values"], push_log.c.remote_id
        ).join(newest, push_log.c.id == newest.c.id)
    )
    return {row.record_key: (row.values_hash, json.loads(row[2]), row.remote_id) for row in rows}
