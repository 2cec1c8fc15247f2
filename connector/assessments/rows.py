"""Turning spreadsheet rows into assessment records, or into row errors the admin can act on.

Headers may be English or Chinese (:data:`HEADER_ALIASES`, case-insensitive); kinds may be the
canonical names or their Chinese names (:data:`KIND_ALIASES`). Other columns are ignored but kept in
``raw``. Every problem of every row is collected, never just the first, so one pass over the error
list fixes the file.

An assessment's ``external_id`` is a hash of what identifies it — agent, kind, time, assessor — and
not of the score, so re-importing a file changes nothing and re-importing a corrected score updates
the row instead of adding a second one.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import partial
from typing import Any

import sqlalchemy as sa

from connector.assessments.errors import ImportFileError, RowError
from connector.assessments.sheet import Sheet, SheetRow
from connector.metrics.agents import normalise_email, normalise_phone
from connector.store.schema import agents

KINDS = (
    "knowledge_exam",
    "policy_exam",
    "accuracy_audit",
    "politeness_audit",
    "self",
    "peer",
    "supervisor",
)
#: Header text (compared case-insensitively) → field. The first alias is the canonical name.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "agent": ("agent", "agent_id", "客户经理", "工号", "邮箱", "手机号"),
    "kind": ("kind", "类型", "考核类型"),
    "score": ("score", "分数", "得分"),
    "assessed_at": ("assessed_at", "date", "日期", "考核日期"),
    "assessor": ("assessor", "考核人", "评分人"),
}
REQUIRED_FIELDS = ("agent", "kind", "score", "assessed_at")
KIND_ALIASES: dict[str, str] = {
    "医疗知识考核": "knowledge_exam",
    "知识考核": "knowledge_exam",
    "政策法规考核": "policy_exam",
    "政策考核": "policy_exam",
    "解答准确率抽检": "accuracy_audit",
    "准确率抽检": "accuracy_audit",
    "礼貌规范抽检": "politeness_audit",
    "礼貌抽检": "politeness_audit",
    "自评": "self",
    "互评": "peer",
    "上级评价": "supervisor",
}

#: Reports a problem with the current row's field: message key and its values.
_Fail = Callable[..., None]

_DATE = re.compile(
    r"^(?P<y>\d{4})[-/.年](?P<m>\d{1,2})[-/.月](?P<d>\d{1,2})日?"
    r"(?:[ T]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d+)?)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}:?\d{2})?$"
)


@dataclass(frozen=True)
class Columns:
    """Where each field is in the sheet, and the header text the admin used for it."""

    index: dict[str, int]
    header: dict[str, str]


def map_columns(headers: Sequence[str]) -> Columns:
    """Find each field's column; raise :class:`ImportFileError` if one is missing or given twice."""
    lookup = {alias.casefold(): field for field, aliases in HEADER_ALIASES.items() for alias in aliases}
    index: dict[str, int] = {}
    header: dict[str, str] = {}
    for position, text in enumerate(headers):
        field = lookup.get(text.casefold())
        if field is None:
            continue
        if field in index:
            raise ImportFileError("duplicate_column", first=header[field], second=text, field=field)
        index[field], header[field] = position, text
    missing = [field for field in REQUIRED_FIELDS if field not in index]
    if missing:
        names = ", ".join(f"{field} ({' / '.join(HEADER_ALIASES[field][1:])})" for field in missing)
        raise ImportFileError("missing_columns", columns=names)
    return Columns(index, header)


@dataclass(frozen=True)
class AgentRef:
    source: str
    external_id: str
    name: str | None

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}" + (f" ({self.name})" if self.name else "")


class AgentDirectory:
    """The store's live agents, findable by email, phone or external id.

    Agents are few (one row per member of staff), so they are read once into memory. Emails and
    phones are compared as the metrics engine does when it merges agents across sources.
    """

    def __init__(self, refs: Iterable[tuple[AgentRef, str | None, str | None]]) -> None:
        self._by_key: dict[str, set[AgentRef]] = {}
        for ref, email, phone in refs:
            self._add(f"id:{ref.external_id}", ref)
            email_key = normalise_email(email)
            if email_key:
                self._add(f"email:{email_key}", ref)
            phone_key = _phone_key(phone or "")
            if phone_key:
                self._add(f"phone:{phone_key}", ref)

    @classmethod
    def load(cls, conn: sa.Connection, source: str | None = None) -> AgentDirectory:
        query = sa.select(
            agents.c.source, agents.c.external_id, agents.c.name, agents.c.email, agents.c.phone
        ).where(agents.c.deleted_at.is_(None))
        if source is not None:
            query = query.where(agents.c.source == source)
        return cls(
            (AgentRef(row.source, row.external_id, row.name), row.email, row.phone)
            for row in conn.execute(query)
        )

    def _add(self, key: str, ref: AgentRef) -> None:
        self._by_key.setdefault(key, set()).add(ref)

    def find(self, value: str) -> list[AgentRef]:
        """Every agent ``value`` could mean, as email, phone or external id (sorted)."""
        keys = [f"id:{value}", f"email:{normalise_email(value)}"]
        phone_key = _phone_key(value)
        if phone_key:
            keys.append(f"phone:{phone_key}")
        found: set[AgentRef] = set()
        for key in keys:
            found |= self._by_key.get(key, set())
        return sorted(found, key=lambda ref: (ref.source, ref.external_id))


def _phone_key(text: str) -> str | None:
    """The value as a phone number, if it can be one: no letters or '@', at least 7 digits."""
    if re.search(r"[A-Za-z@]", text):
        return None
    digits = normalise_phone(text)
    return digits if digits and len(digits) >= 7 else None


@dataclass(frozen=True)
class Assessment:
    """One valid row, ready for the ``assessments`` table."""

    row: int
    source: str
    agent_id: str
    kind: str
    score: float
    assessed_at: datetime
    assessor: str | None
    raw: dict[str, Any]

    @property
    def external_id(self) -> str:
        identity = "\x1f".join(
            (self.source, self.agent_id, self.kind, self.assessed_at.isoformat(), self.assessor or "")
        )
        return hashlib.sha256(identity.encode()).hexdigest()[:40]

    def as_store_row(self, synced_at: datetime) -> dict[str, Any]:
        return {
            "source": self.source,
            "external_id": self.external_id,
            "agent_id": self.agent_id,
            "kind": self.kind,
            "score": self.score,
            "assessed_at": self.assessed_at,
            "assessor": self.assessor,
            "updated_at": self.assessed_at,
            "deleted_at": None,
            "synced_at": synced_at,
            "raw": json.dumps(self.raw, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        }


def parse_rows(
    sheet: Sheet, directory: AgentDirectory, tz: tzinfo, now: datetime
) -> tuple[list[Assessment], list[RowError]]:
    """Validate every row of ``sheet``: the good ones as assessments, every problem as an error."""
    columns = map_columns(sheet.headers)
    good: list[Assessment] = []
    errors: list[RowError] = []
    first_row_of: dict[str, int] = {}
    for sheet_row in sheet.rows:
        parsed = _parse_row(sheet_row, sheet.headers, columns, directory, tz, now)
        if isinstance(parsed, Assessment):
            seen = first_row_of.setdefault(parsed.external_id, parsed.row)
            if seen != parsed.row:
                errors.append(RowError(parsed.row, columns.header["agent"], "duplicate_row", {"row": seen}))
            else:
                good.append(parsed)
        else:
            errors.extend(parsed)
    return good, errors


def _parse_row(
    sheet_row: SheetRow,
    headers: Sequence[str],
    columns: Columns,
    directory: AgentDirectory,
    tz: tzinfo,
    now: datetime,
) -> Assessment | list[RowError]:
    def cell(field: str) -> Any:
        position = columns.index.get(field)
        if position is None or position >= len(sheet_row.cells):
            return None
        return sheet_row.cells[position]

    errors: list[RowError] = []

    def fail(field: str, key: str, **values: Any) -> None:
        errors.append(RowError(sheet_row.number, columns.header[field], key, values))

    agent = _agent(cell("agent"), directory, partial(fail, "agent"))
    kind = _kind(cell("kind"), partial(fail, "kind"))
    score = _score(cell("score"), partial(fail, "score"))
    assessed_at = _assessed_at(cell("assessed_at"), tz, now, partial(fail, "assessed_at"))
    if errors or agent is None or kind is None or score is None or assessed_at is None:
        return errors
    assessor = _text(cell("assessor")) or None
    raw = {
        header: _json_value(value)
        for header, value in zip(headers, sheet_row.cells, strict=False)
        if header and value is not None
    }
    return Assessment(
        sheet_row.number, agent.source, agent.external_id, kind, score, assessed_at, assessor, raw
    )


def _agent(value: Any, directory: AgentDirectory, fail: _Fail) -> AgentRef | None:
    text = _text(value)
    if not text:
        fail("empty")
        return None
    matches = directory.find(text)
    if not matches:
        fail("agent_unknown", value=text)
        return None
    if len(matches) > 1:
        fail("agent_ambiguous", value=text, matches=", ".join(str(ref) for ref in matches))
        return None
    return matches[0]


def _kind(value: Any, fail: _Fail) -> str | None:
    text = _text(value)
    if not text:
        fail("empty")
        return None
    canonical = re.sub(r"[\s-]+", "_", text.casefold())
    kind = canonical if canonical in KINDS else KIND_ALIASES.get(text)
    if kind is None:
        fail("kind_unknown", value=text, kinds=", ".join(KINDS))
    return kind


def _score(value: Any, fail: _Fail) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        fail("empty")
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        score = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        fail("score_not_number", value=_text(value))
        return None
    if not math.isfinite(score) or not 0 <= score <= 100:
        fail("score_range", value=_text(value))
        return None
    return score


def _assessed_at(value: Any, tz: tzinfo, now: datetime, fail: _Fail) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        fail("empty")
        return None
    moment = _to_datetime(value, tz)
    if moment is None:
        fail("date_invalid", value=_text(value))
        return None
    if moment > now:
        fail("date_future", value=_text(value))
        return None
    return moment


def _to_datetime(value: Any, tz: tzinfo) -> datetime | None:
    """A date is 00:00 in the clinic's time zone; a naive date-time is clinic-local; result in UTC."""
    if isinstance(value, datetime):
        local = value if value.tzinfo else value.replace(tzinfo=tz)
        return local.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tz).astimezone(UTC)
    if not isinstance(value, str):
        return None
    match = _DATE.match(value.strip())
    if not match:
        return None
    zone = tz if match["tz"] is None else _offset(match["tz"])
    try:
        local = datetime(
            int(match["y"]),
            int(match["m"]),
            int(match["d"]),
            int(match["H"] or 0),
            int(match["M"] or 0),
            int(match["S"] or 0),
            tzinfo=zone,
        )
    except ValueError:
        return None
    return local.astimezone(UTC)


def _offset(text: str) -> tzinfo:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _text(value: Any) -> str:
    """A cell as the admin typed it: numbers without a spurious '.0', dates in ISO form."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()


def _json_value(value: Any) -> Any:
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
