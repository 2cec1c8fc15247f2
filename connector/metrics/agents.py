"""Who a scorecard belongs to: agents keyed by (source, external_id), merged across sources.

A clinic that runs two CRMs has one person as two agent records. With ``[scorecard]
merge_agents_by = "email"`` (or ``"phone"``) records with the same normalised value become one
scorecard, keyed by the member that sorts first by (source, external_id) so the key is stable
between runs. Records without the value, and deleted agents, are never merged. Owners that have no
agent record at all (agents not synced yet) still get a scorecard under their own key.

Phones are compared by digits only, with a leading China country code (86 / 0086 / +86) dropped
from 11-digit mobile numbers, so "+86 138-0013-8000" and "13800138000" match.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connector.store.schema import agents

AgentKey = tuple[str, str]  # (source, external_id) of the scorecard's agent
_NON_DIGITS = re.compile(r"\D+")


def normalise_email(value: str | None) -> str | None:
    text = (value or "").strip().lower()
    return text or None


def normalise_phone(value: str | None) -> str | None:
    digits = _NON_DIGITS.sub("", value or "")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11 and digits[len(prefix)] == "1":
            digits = digits[len(prefix) :]
            break
    return digits or None


@dataclass(frozen=True)
class AgentDirectory:
    """Agent names and the member → key map of merged agents."""

    names: dict[AgentKey, str | None] = field(default_factory=dict)
    merged: dict[AgentKey, AgentKey] = field(default_factory=dict)  # only members whose key differs

    def key(self, source: str, external_id: str) -> AgentKey:
        return self.merged.get((source, external_id), (source, external_id))

    def name(self, key: AgentKey) -> str | None:
        return self.names.get(key)

    def members(self, key: AgentKey) -> list[AgentKey]:
        """Every (source, external_id) that scores under ``key``, the key itself first."""
        return [key, *sorted(member for member, target in self.merged.items() if target == key)]


def load_directory(conn: Connection, merge_by: str) -> AgentDirectory:
    """Read the agents table (small: one row per CRM user) and group it by ``merge_by``."""
    rows = conn.execute(
        sa.select(agents.c.source, agents.c.external_id, agents.c.name, agents.c.email, agents.c.phone)
        .where(agents.c.deleted_at.is_(None))
        .order_by(agents.c.source, agents.c.external_id)
    ).all()
    names: dict[AgentKey, str | None] = {}
    groups: dict[str, list[AgentKey]] = defaultdict(list)
    normalise = {"email": normalise_email, "phone": normalise_phone}.get(merge_by)
    for row in rows:
        member = (row.source, row.external_id)
        names[member] = row.name
        value = normalise(getattr(row, merge_by)) if normalise else None
        if value is not None:
            groups[value].append(member)
    merged: dict[AgentKey, AgentKey] = {}
    for members in groups.values():
        key = min(members)
        merged.update({member: key for member in members if member != key})
        if names.get(key) is None:
            names[key] = next((names[m] for m in sorted(members) if names.get(m)), None)
    return AgentDirectory(names=names, merged=merged)
