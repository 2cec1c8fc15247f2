"""Initial schema: the canonical entities and the connector's own tables.

Revision ID: 0001
Revises:
Create Date: 2026-05-09

Written out in full rather than built from ``connector.store.schema``: a migration must keep
creating what it created on the day it was written, whatever the live schema becomes later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
ID = sa.String(128)


def _synced(name: str, *columns: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("external_id", ID, nullable=False),
        *columns,
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("deleted_at", TZ),
        sa.Column("synced_at", TZ, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("source", "external_id", name=f"pk_{name}"),
    )


def _synced_tables() -> None:
    _synced(
        "agents",
        sa.Column("name", sa.String(200)),
        sa.Column("email", sa.String(320)),
        sa.Column("phone", sa.String(64)),
        sa.Column("department", sa.String(200)),
        sa.Column("role", sa.String(200)),
        sa.Column("active", sa.Boolean),
    )
    _synced(
        "contacts",
        sa.Column("name", sa.String(200)),
        sa.Column("phone", sa.String(64)),
        sa.Column("mobile", sa.String(64)),
        sa.Column("email", sa.String(320)),
        sa.Column("owner_id", ID),
        sa.Column("created_at", TZ),
    )
    _synced(
        "tickets",
        sa.Column("contact_id", ID),
        sa.Column("owner_id", ID),
        sa.Column("subject", sa.Text),
        sa.Column("category", sa.String(32)),
        sa.Column("channel", sa.String(32)),
        sa.Column("priority", sa.String(32)),
        sa.Column("status", sa.String(32)),
        sa.Column("created_at", TZ),
        sa.Column("first_response_at", TZ),
        sa.Column("resolved_at", TZ),
        sa.Column("satisfaction", sa.Integer),
    )
    _synced(
        "follow_ups",
        sa.Column("contact_id", ID),
        sa.Column("ticket_id", ID),
        sa.Column("owner_id", ID),
        sa.Column("kind", sa.String(32)),
        sa.Column("due_at", TZ),
        sa.Column("completed_at", TZ),
        sa.Column("status", sa.String(32)),
        sa.Column("outcome", sa.Text),
    )
    _synced(
        "calls",
        sa.Column("contact_id", ID),
        sa.Column("ticket_id", ID),
        sa.Column("owner_id", ID),
        sa.Column("direction", sa.String(32)),
        sa.Column("purpose", sa.String(32)),
        sa.Column("started_at", TZ),
        sa.Column("duration_s", sa.Integer),
    )
    _synced(
        "surveys",
        sa.Column("contact_id", ID),
        sa.Column("ticket_id", ID),
        sa.Column("owner_id", ID),
        sa.Column("score", sa.Integer),
        sa.Column("submitted_at", TZ),
        sa.Column("comment", sa.Text),
    )
    _synced(
        "assessments",
        sa.Column("agent_id", ID),
        sa.Column("kind", sa.String(32)),
        sa.Column("score", sa.Float),
        sa.Column("assessed_at", TZ),
        sa.Column("assessor", sa.String(200)),
    )
    for table in ("tickets", "follow_ups", "calls", "surveys"):
        op.create_index(f"ix_{table}_owner", table, ["source", "owner_id"])
    op.create_index("ix_tickets_created", "tickets", ["created_at"])
    op.create_index("ix_follow_ups_due", "follow_ups", ["due_at"])
    op.create_index("ix_calls_started", "calls", ["started_at"])
    op.create_index("ix_calls_contact", "calls", ["source", "contact_id"])
    op.create_index("ix_follow_ups_contact", "follow_ups", ["source", "contact_id"])
    op.create_index("ix_surveys_submitted", "surveys", ["submitted_at"])
    op.create_index("ix_assessments_agent", "assessments", ["source", "agent_id"])


def _results_tables() -> None:
    op.create_table(
        "scorecards",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("period", sa.String(32), nullable=False),
        sa.Column("period_start", TZ, nullable=False),
        sa.Column("period_end", TZ, nullable=False),
        sa.Column("agent_name", sa.String(200)),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("quality", sa.Float),
        sa.Column("efficiency", sa.Float),
        sa.Column("knowledge", sa.Float),
        sa.Column("composite", sa.Float),
        sa.Column("bonus_pct", sa.Float),
        sa.Column("rank", sa.Integer),
        sa.Column("trend", sa.Float),
        sa.Column("missing", sa.Text, nullable=False),
        sa.Column("computed_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("source", "agent_id", "period", name="pk_scorecards"),
    )
    op.create_table(
        "alerts",
        sa.Column("fingerprint", sa.String(128), primary_key=True),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("agent_id", ID),
        sa.Column("entity", sa.String(32)),
        sa.Column("entity_id", ID),
        sa.Column("message", sa.Text),
        sa.Column("details", sa.Text),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("resolved_at", TZ),
        sa.Column("delivered", sa.Text),
    )
    op.create_index("ix_alerts_open", "alerts", ["resolved_at"])
    op.create_table(
        "alert_deliveries",
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("remote_id", ID),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", TZ),
        sa.Column("sent_at", TZ),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", "channel", "severity", name="pk_alert_deliveries"),
    )
    op.create_table(
        "ticket_status_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("ticket_id", ID, nullable=False),
        sa.Column("from_status", sa.String(32)),
        sa.Column("to_status", sa.String(32), nullable=False),
        sa.Column("changed_at", TZ, nullable=False),
        sa.Column("observed_at", TZ, nullable=False),
    )
    op.create_index("ix_status_history_ticket", "ticket_status_history", ["source", "ticket_id"])


def _bookkeeping_tables() -> None:
    op.create_table(
        "sync_state",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("stream", sa.String(16), nullable=False),
        sa.Column("cursor", sa.Text),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("source", "entity", "stream", name="pk_sync_state"),
    )
    counters = ("fetched", "inserted", "updated", "unchanged", "deleted", "quarantined", "api_calls")
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("source", sa.String(64)),
        sa.Column("entity", sa.String(32)),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ),
        sa.Column("status", sa.String(16), nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False) for name in counters),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_sync_runs_job", "sync_runs", ["job", "source", "started_at"])
    op.create_table(
        "quarantine",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("external_id", ID, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("first_seen", TZ, nullable=False),
        sa.Column("last_seen", TZ, nullable=False),
        sa.PrimaryKeyConstraint("source", "entity", "external_id", name="pk_quarantine"),
    )
    op.create_table(
        "push_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("object", sa.String(128), nullable=False),
        sa.Column("record_key", sa.String(256), nullable=False),
        sa.Column("remote_id", ID),
        sa.Column("values_hash", sa.String(64), nullable=False),
        sa.Column("values", sa.Text, nullable=False),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("pushed_at", TZ, nullable=False),
    )
    op.create_index("ix_push_log_key", "push_log", ["target", "object", "record_key"])
    op.create_table(
        "auth_tokens",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("extra", sa.Text),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("obtained_at", TZ, nullable=False),
    )
    op.create_table(
        "locks",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("holder", sa.String(256), nullable=False),
        sa.Column("acquired_at", TZ, nullable=False),
        sa.Column("heartbeat_at", TZ, nullable=False),
    )


def upgrade() -> None:
    _synced_tables()
    _results_tables()
    _bookkeeping_tables()


TABLES = (
    "locks", "auth_tokens", "push_log", "quarantine", "sync_runs", "sync_state",
    "ticket_status_history", "alert_deliveries", "alerts", "scorecards",
    "assessments", "surveys", "calls", "follow_ups", "tickets", "contacts", "agents",
)  # fmt: skip


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)  # indexes go with their tables
