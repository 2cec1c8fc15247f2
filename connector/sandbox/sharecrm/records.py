"""How the clinic looks through ShareCRM: ids, field names and Chinese option values (sharecrm.md §4).

The field names and values are those ``mappings/sharecrm.toml`` reads, so the bundled mapping syncs
this sandbox unchanged; surveys live in a custom object that :func:`sandbox_mapping` adds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from connector.sandbox.clinic import CLINIC_TZ, SOFT_DELETED, Agent, Clinic

_CODES = {"contacts": 1, "tickets": 2, "follow_ups": 3, "calls": 4, "surveys": 5}
BAD_DATE = "2026-13-45 25:61"
BAD_PICKLIST = "??未定义选项??"
_PICKLIST_FIELD = {"tickets": "status", "follow_ups": "follow_up_status", "calls": "call_type"}

_CASE_STATUS = {"pending": "挂起", "resolved": "已解决", "closed": "已关闭"}  # open: 待处理 / 处理中
_CASE_TYPE = {"complaint": "投诉", "consultation": "咨询", "appointment": "预约", "other": "其他"}
_CASE_SOURCE = {"phone": "电话", "online": "在线", "walk_in": "到院", "wechat": "微信", "email": "邮件"}
_PRIORITY = {"high": "高", "medium": "中", "low": "低"}
_FU_KIND = {"revisit": "回访", "callback": "回电"}
_FU_STATUS = {"planned": "待回访", "done": "已完成", "cancelled": "已取消"}
_DIRECTION = {"inbound": "呼入", "outbound": "呼出", "missed": "未接"}
_PURPOSE = {"booking": "预约挂号", "consultation": "咨询", "complaint": "投诉", "other": "其他"}


def open_user_id(key: int) -> str:
    """The ``FSUID_`` + 32 hex digits openUserId of clinic agent ``key``."""
    return f"FSUID_{hashlib.md5(f'agent:{key}'.encode()).hexdigest().upper()}"


def object_id(entity: str, key: int, created: datetime) -> str:
    """Like a MongoDB ObjectId: creation time first, so ids sort roughly by creation."""
    return f"{int(created.timestamp()):08x}{_CODES[entity]:04x}{key:012x}"


def epoch_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _day_ms(day: date) -> int:
    """A date-only field: midnight Asia/Shanghai in epoch milliseconds (§4.2)."""
    return int(datetime.combine(day, datetime.min.time(), tzinfo=CLINIC_TZ).timestamp() * 1000)


def shown_modified(record: Any) -> datetime:
    """``last_modified_time``: invalidating a record modifies it."""
    if record.deleted == SOFT_DELETED and record.deleted_at is not None:
        return max(record.modified, record.deleted_at)
    return record.modified


def sandbox_mapping() -> str:
    """A mapping override that adds this sandbox's survey object (``object_survey__c``)."""
    return """extends = "sharecrm"

[entities.surveys]
object = "object_survey__c"
deleted_if = [{ path = "life_status", in = ["invalid"] }, { path = "is_deleted", in = [true] }]
[entities.surveys.columns]
external_id = "_id"
updated_at = { path = "last_modified_time", transform = "epoch_ms" }
contact_id = "field_contact__c"
ticket_id = "field_case__c"
owner_id = { path = ["owner.0", "created_by.0"] }
score = { path = "field_score__c", transform = "int", required = true }
submitted_at = { path = ["field_submitted__c", "create_time"], transform = "epoch_ms", required = true }
comment = "field_comment__c"
"""


def malform(entity: str, row: dict[str, Any], kind: str) -> dict[str, Any]:
    """A copy of ``row`` broken the way the ``malformed`` fault asks (a picklist only where one is
    required; otherwise an unparsable time)."""
    row = dict(row)
    if kind == "missing_id":
        row.pop("_id", None)
    elif kind == "bad_picklist" and entity in _PICKLIST_FIELD:
        row[_PICKLIST_FIELD[entity]] = BAD_PICKLIST
    elif "last_modified_time" in row:
        row["last_modified_time"] = BAD_DATE
    return row


def employee(agent: Agent, department_id: int) -> dict[str, Any]:
    """An item of ``/cgi/user/list`` ``userList`` (and of ``getByMobile`` ``empList``)."""
    return {
        "openUserId": open_user_id(agent.key),
        "name": agent.name,
        "fullName": agent.name,
        "nickName": agent.given,
        "account": agent.email.split("@")[0],
        "mobile": agent.mobile,
        "email": agent.email,
        "gender": "F" if agent.key % 2 else "M",
        "position": agent.role,
        "departmentIds": [department_id],
        "mainDepartmentId": department_id,
        "isStop": not agent.active,
        "status": "NORMAL" if agent.active else "STOP",
        "employeeNumber": f"E{agent.key + 1:04d}",
    }


@dataclass(frozen=True)
class Renderer:
    """Renders clinic records as ShareCRM object data (system fields first, then the object's)."""

    clinic: Clinic

    def render(self, entity: str, record: Any) -> dict[str, Any]:
        """The record as ShareCRM stores it (null fields omitted, as with ``includeNull`` false)."""
        owner = self.clinic.agents[record.owner]
        uid = open_user_id(owner.key)
        out: dict[str, Any] = {
            "_id": object_id(entity, record.key, record.created),
            "owner": [uid],
            "owner__r": {"id": uid, "name": owner.name},
            "created_by": [uid],
            "last_modified_by": [uid],
            "create_time": epoch_ms(record.created),
            "last_modified_time": epoch_ms(shown_modified(record)),
            "life_status": "invalid" if record.deleted == SOFT_DELETED else "normal",
            "lock_status": "0",
            "is_deleted": False,
            "record_type": "default__c",
            "data_own_department": ["999999"],
            "owner_department": owner.department,
        }
        out.update(getattr(self, f"_{entity}")(record))
        return {k: v for k, v in out.items() if v is not None}

    def _ref(self, entity: str, key: int | None) -> dict[str, Any] | None:
        if key is None:
            return None
        record = self.clinic.records(entity)[key]
        api = {"contacts": "ContactObj", "tickets": "CasesObj"}[entity]
        name = record.name if entity == "contacts" else record.subject
        return {"describe_api_name": api, "id": object_id(entity, key, record.created), "name": name}

    def _related(self, contact: int | None, ticket: int | None) -> list[dict[str, Any]]:
        return [ref for ref in (self._ref("contacts", contact), self._ref("tickets", ticket)) if ref]

    def _contacts(self, c: Any) -> dict[str, Any]:
        return {"name": c.name, "mobile": c.mobile, "tel": c.phone, "email": c.email}

    def _tickets(self, t: Any) -> dict[str, Any]:
        contact = self._ref("contacts", t.contact)
        status = _CASE_STATUS.get(t.status) or ("处理中" if t.first_response else "待处理")
        return {
            "name": t.subject,
            "case_no": f"GD{t.number:08d}",
            "contact_id": contact and contact["id"],
            "contact_id__r": contact and contact["name"],
            "case_type": _CASE_TYPE[t.category],
            "case_source": _CASE_SOURCE[t.channel],
            "priority": _PRIORITY[t.priority],
            "status": status,
            "first_response_time": epoch_ms(t.first_response),
            "resolved_time": epoch_ms(t.resolved),
            "satisfaction": None if t.satisfaction is None else str(t.satisfaction),
        }

    def _follow_ups(self, f: Any) -> dict[str, Any]:
        return {
            "name": f.subject,
            "active_record_type": _FU_KIND.get(f.kind, "其他"),
            "active_record_content": f.outcome or f.subject,
            "related_object_data": self._related(f.contact, f.ticket),
            "due_date": _day_ms(f.due),
            "follow_up_status": _FU_STATUS[f.status],
            "completed_time": epoch_ms(f.completed),
        }

    def _calls(self, c: Any) -> dict[str, Any]:
        contact = self._ref("contacts", c.contact)
        return {
            "name": c.subject,
            "record_content": c.subject,
            "contact_id": contact and contact["id"],
            "related_object_data": self._related(c.contact, c.ticket),
            "related_api_names": ["ContactObj"],
            "call_type": _DIRECTION[c.direction],
            "call_purpose": _PURPOSE[c.purpose],
            "call_start_time": epoch_ms(c.started),
            "call_duration": c.duration_s,
        }

    def _surveys(self, s: Any) -> dict[str, Any]:
        contact, case = self._ref("contacts", s.contact), self._ref("tickets", s.ticket)
        return {
            "name": f"满意度调查{s.key + 1:06d}",
            "field_score__c": str(s.score),
            "field_comment__c": s.comment,
            "field_submitted__c": epoch_ms(s.submitted),
            "field_contact__c": contact and contact["id"],
            "field_case__c": case and case["id"],
        }
