"""The store's public schema (design.md, "Canonical entities"), as SQLAlchemy Core tables.

Other tools (BI, the metrics engine) query these tables directly, so names and meanings follow
design.md exactly. Synced tables are keyed by ``(source, external_id)``: the CRM's own id within the
source named in the config. ``*_id`` columns that point at other entities hold that entity's
``external_id`` from the same source; there are no foreign keys because records arrive in any order.

All time columns are :class:`UTCDateTime` (UTC, read back aware). ``raw`` holds the CRM record as
compact JSON text with sorted keys, so equal records give equal text (the upsert compares it to
notice changes that did not move the CRM's modification time).

Migrations in ``connector/store/migrations`` build exactly this schema; a test checks that they agree.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from connector.store.types import UTCDateTime

metadata = MetaData()


def _synced(name: str, *columns: Column) -> Table:
    """A table fed by a sync: common columns first, then the entity's own."""
    return Table(
        name,
        metadata,
        Column("source", String(64), nullable=False),
        Column("external_id", String(128), nullable=False),
        *columns,
        Column("updated_at", UTCDateTime, nullable=False),
        Column("deleted_at", UTCDateTime),
        Column("synced_at", UTCDateTime, nullable=False),
        Column("raw", Text, nullable=False),
        PrimaryKeyConstraint("source", "external_id", name=f"pk_{name}"),
    )


agents = _synced(
    "agents",
    Column("name", String(200)),
    Column("email", String(320)),
    Column("phone", String(64)),
    Column("department", String(200)),
    Column("role", String(200)),
    Column("active", Boolean),
)

contacts = _synced(
    "contacts",
    Column("name", String(200)),
    Column("phone", String(64)),
    Column("mobile", String(64)),
    Column("email", String(320)),
    Column("owner_id", String(128)),
    Column("created_at", UTCDateTime),
)

tickets = _synced(
    "tickets",
    Column("contact_id", String(128)),
    Column("owner_id", String(128)),
    Column("subject", Text),
    Column("category", String(32)),
    Column("channel", String(32)),
    Column("priority", String(32)),
    Column("status", String(32)),
    Column("created_at", UTCDateTime),
    Column("first_response_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    Column("satisfaction", Integer),
)

follow_ups = _synced(
    "follow_ups",
    Column("contact_id", String(128)),
    Column("ticket_id", String(128)),
    Column("owner_id", String(128)),
    Column("kind", String(32)),
    Column("due_at", UTCDateTime),
    Column("completed_at", UTCDateTime),
    Column("status", String(32)),
    Column("outcome", Text),
)

calls = _synced(
    "calls",
    Column("contact_id", String(128)),
    Column("ticket_id", String(128)),
    Column("owner_id", String(128)),
    Column("direction", String(32)),
    Column("purpose", String(32)),
    Column("started_at", UTCDateTime),
    Column("duration_s", Integer),
)

surveys = _synced(
    "surveys",
    Column("contact_id", String(128)),
    Column("ticket_id", String(128)),
    Column("owner_id", String(128)),
    Column("score", Integer),
    Column("submitted_at", UTCDateTime),
    Column("comment", Text),
)

assessments = _synced(
    "assessments",
    Column("agent_id", String(128)),
    Column("kind", String(32)),
    Column("score", Float),
    Column("assessed_at", UTCDateTime),
    Column("assessor", String(200)),
)

#: Canonical entity name → table, in the order a sync fills them (people before their records).
ENTITY_TABLES: dict[str, Table] = {
    "agents": agents,
    "contacts": contacts,
    "tickets": tickets,
    "follow_ups": follow_ups,
    "calls": calls,
    "surveys": surveys,
    "assessments": assessments,
}
#: Entities a CRM adapter may sync (assessments come from file imports, not from a CRM).
SYNCED_ENTITIES: tuple[str, ...] = ("agents", "contacts", "tickets", "follow_ups", "calls", "surveys")

for _table in (tickets, follow_ups, calls, surveys):
    Index(f"ix_{_table.name}_owner", _table.c.source, _table.c.owner_id)
Index("ix_tickets_created", tickets.c.created_at)
Index("ix_follow_ups_due", follow_ups.c.due_at)
Index("ix_calls_started", calls.c.started_at)
# First-response look-ups: the owner's activity linked to a ticket or a patient, after a time.
Index("ix_calls_contact", calls.c.source, calls.c.contact_id, calls.c.owner_id, calls.c.started_at)
Index("ix_calls_ticket", calls.c.source, calls.c.ticket_id, calls.c.owner_id, calls.c.started_at)
Index(
    "ix_follow_ups_contact",
    follow_ups.c.source,
    follow_ups.c.contact_id,
    follow_ups.c.owner_id,
    follow_ups.c.completed_at,
)
Index(
    "ix_follow_ups_ticket",
    follow_ups.c.source,
    follow_ups.c.ticket_id,
    follow_ups.c.owner_id,
    follow_ups.c.completed_at,
)
Index("ix_surveys_submitted", surveys.c.submitted_at)
Index("ix_assessments_agent", assessments.c.source, assessments.c.agent_id)

# ---- derived tables the connector owns -------------------------------------------------------

scorecards = Table(
    "scorecards",
    metadata,
    Column("source", String(64), nullable=False),
    Column("agent_id", String(128), nullable=False),
    Column("period", String(32), nullable=False),  # "2026-10", "2026-W43", "2026-Q4", "2026-10-05", "A..B"
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("agent_name", String(200)),
    Column("metrics", Text, nullable=False),  # JSON: every metric by its design.md name (null = no data)
    Column("quality", Float),
    Column("efficiency", Float),
    Column("knowledge", Float),
    Column("composite", Float),
    Column("bonus_pct", Float),
    Column("rank", Integer),
    Column("trend", Float),
    Column("missing", Text, nullable=False),  # JSON list of metric and category names without data
    Column("computed_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("source", "agent_id", "period", name="pk_scorecards"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("fingerprint", String(128), primary_key=True),
    Column("rule", String(64), nullable=False),
    Column("severity", String(16), nullable=False),  # warning | breach | info
    Column("source", String(64), nullable=False),
    Column("agent_id", String(128)),
    Column("entity", String(32)),
    Column("entity_id", String(128)),
    Column("message", Text),
    Column("details", Text),  # JSON
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("delivered", Text),  # JSON: channel → delivery state
)
Index("ix_alerts_open", alerts.c.resolved_at)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("fingerprint", String(128), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # pending | sent | failed | closed
    Column("attempts", Integer, nullable=False, default=0),
    Column("remote_id", String(128)),
    Column("last_error", Text),
    Column("next_attempt_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("fingerprint", "channel", "severity", name="pk_alert_deliveries"),
)

ticket_status_history = Table(
    "ticket_status_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    Column("ticket_id", String(128), nullable=False),
    Column("from_status", String(32)),
    Column("to_status", String(32), nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),  # the CRM modification time of the version seen
    Column("observed_at", UTCDateTime, nullable=False),  # when the connector saw it
)
Index("ix_status_history_ticket", ticket_status_history.c.source, ticket_status_history.c.ticket_id)

sync_state = Table(
    "sync_state",
    metadata,
    Column("source", String(64), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("stream", String(16), nullable=False),  # records | deletions | id_scan
    Column("cursor", Text),  # JSON, adapter-defined
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("source", "entity", "stream", name="pk_sync_state"),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),  # sync | metrics | alerts | push | import
    Column("source", String(64)),
    Column("entity", String(32)),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("status", String(16), nullable=False),  # running | success | failed | partial
    Column("fetched", Integer, nullable=False, default=0),
    Column("inserted", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("deleted", Integer, nullable=False, default=0),
    Column("quarantined", Integer, nullable=False, default=0),
    Column("api_calls", Integer, nullable=False, default=0),
    Column("error", Text),
)
Index("ix_sync_runs_job", sync_runs.c.job, sync_runs.c.source, sync_runs.c.started_at)

quarantine = Table(
    "quarantine",
    metadata,
    Column("source", String(64), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("external_id", String(128), nullable=False),
    Column("raw", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("source", "entity", "external_id", name="pk_quarantine"),
)

push_log = Table(
    "push_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target", String(64), nullable=False),  # source name pushed to
    Column("object", String(128), nullable=False),  # CRM module / object
    Column("record_key", String(256), nullable=False),  # e.g. agent external id + period
    Column("remote_id", String(128)),
    Column("values_hash", String(64), nullable=False),
    Column("values", Text, nullable=False),  # JSON of what was sent
    Column("result", String(32), nullable=False),  # success | error code
    Column("error", Text),
    Column("pushed_at", UTCDateTime, nullable=False),
)
Index("ix_push_log_key", push_log.c.target, push_log.c.object, push_log.c.record_key)

auth_tokens = Table(
    "auth_tokens",
    metadata,
    # Short-lived access tokens only, shared between processes. Never refresh tokens or secrets.
    Column("source", String(64), primary_key=True),
    Column("token", Text, nullable=False),
    Column("extra", Text),  # JSON: api_domain, corpId …
    Column("expires_at", UTCDateTime, nullable=False),
    Column("obtained_at", UTCDateTime, nullable=False),
)

locks = Table(
    "locks",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("holder", String(256), nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)
