"""Carrying out a push plan through the adapter's write API, and recording every answer.

The whole plan of a target goes to ``adapter.push`` in one call: the adapter knows the CRM's largest
batch (Zoho: 100 records an upsert; ShareCRM: one record a call) and its retry rules. Every
per-record answer becomes a ``push_log`` row — ``success`` with the values' hash, or the CRM's error
code and reason — so the next plan skips exactly the records that were written.

A request-level failure (credentials, a CRM that cannot be reached) raises out of the adapter
before anything was written; then no row is recorded and every record stays planned.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connector.adapter import Adapter, PushResult
from connector.push.planner import TargetPlan
from connector.store.schema import push_log


def write_plan(adapter: Adapter, plan: TargetPlan) -> list[PushResult]:
    """The CRM's answer for each planned record, in plan order."""
    if not plan.records:
        return []
    results = adapter.push(plan.object, [record.values for record in plan.records])
    if len(results) != len(plan.records):
        raise RuntimeError(
            f"{plan.source}: the adapter answered {len(results)} results for {len(plan.records)} records"
        )
    return results


def record_results(
    conn: Connection, plan: TargetPlan, results: Sequence[PushResult], *, now: datetime
) -> None:
    """One ``push_log`` row per planned record with the CRM's answer."""
    rows = [
        {
            "target": plan.source,
            "object": plan.object,
            "record_key": record.record_key,
            "remote_id": result.remote_id or (record.remote_id if result.ok else None),
            "values_hash": record.values_hash,
            "values": json.dumps(record.values, sort_keys=True, ensure_ascii=False, default=str),
            "result": "success" if result.ok else (result.code or "error")[:32],
            "error": None if result.ok else (result.message or result.code),
            "pushed_at": now,
        }
        for record, result in zip(plan.records, results, strict=True)
    ]
    if rows:
        conn.execute(sa.insert(push_log), rows)
