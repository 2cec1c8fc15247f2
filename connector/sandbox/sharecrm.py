"""ShareCRM (纷享销客) open-API emulation over the synthetic clinic, built to crm-api/sharecrm.md.

Every answer is HTTP 200 with an ``errorCode`` envelope (``traceId``, ``errorMessage``,
``errorDescription``), as the real gateway does; only unknown paths get HTTP 404.

Auth (legacy body style, §1.3–1.4, §2)
- ``POST /cgi/corpAccessToken/get/V2`` ``{appId, appSecret, permanentCode}`` → ``corpAccessToken``,
  ``corpId``, ``expiresIn``. Wrong appId → 20006, wrong appSecret → 10006 (as observed), wrong
  permanentCode → 20015. The same token comes back for its first 6,600 s (``expiresIn`` = the life
  left); later a new one is issued and the old one works to its 7,200 s end (real time,
  ``token_clock``). At most 10 token calls a minute (30004 beyond). ``expire_tokens`` revokes all.
- Other calls carry ``corpAccessToken`` + ``corpId`` in the body: unknown, expired or revoked → 20016.
  CRM calls also need ``currentOpenUserId``: missing or malformed → 11008, unknown → 20012. An
  operator who is not a CRM administrator sees only the records they own — silently, as in ShareCRM.

Limits (§5.2): more than ``rate_limit_calls`` arrivals on one endpoint within any
``rate_limit_window_s`` (100 per 20 s) → 30004; past ``daily_quota`` calls per clinic day → 30002
(resets at the clinic's local midnight). Framework faults: ``rate_limit_burst`` answers 30004,
``server_error`` cycles −1 / HTTP 502 / 50009 / −2.

Reads (§3.2–3.3, §4)
- ``POST /cgi/crm/v2/data/query`` and ``/cgi/crm/custom/v2/data/query`` (custom objects, ``__c``,
  only there; a preset object only on the preset path, else 15002): ``limit`` 1–100 (else 15002),
  ``offset`` a multiple of ``limit`` and ≤ 10,000 (else 10013), filters EQ N GT GTE LT LTE IN NIN
  BETWEEN IS ISN LIKE (AND-ed), ``orders``, ``fieldProjection`` (``_id`` always), null fields
  omitted; ``total`` only with ``find_explicit_total_num``. ``…/data/get`` by ``objectDataId``.
- Clinic records: ContactObj, CasesObj, ActiveRecordObj, the call object (``call_object``,
  TelesalesRecordObj by default) and ``object_survey__c``, with the field names and Chinese values
  of ``mappings/sharecrm.toml`` (surveys via :func:`sandbox_mapping`). ``_id`` s are 24 hex digits
  that sort like ObjectIds (creation time first). Invalidated (soft-deleted) records have
  ``life_status`` "invalid" and ``last_modified_time`` = the invalidation; ``invalid_visible=False``
  hides them from queries (the other reading of §6). Hard-deleted records are gone.
- ``POST /cgi/user/list`` (``userList``, ``isStop`` for staff who left), ``/cgi/user/getByMobile``
  (``empList``), ``/cgi/department/list`` (``departments``).

Writes (§3.4, §6.1): ``…/data/create`` / ``…/data/update`` on the writable objects (scorecards
``object_perf__c``, alert tasks ``object_alert__c``, ``ScheduleObj``). Employee fields must be lists
and number fields strings (else 15002); ``triggerWorkFlow`` absent or true counts a
``workflow_triggered`` event. Create answers top-level ``dataId``; update by ``_id`` changes only the
fields sent.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from connector.sandbox.clinic import CLINIC_TZ, HARD_DELETED, SOFT_DELETED, Agent, Clinic, TruthRow
from connector.sandbox.server import Request, Response, Route, json_response, route

PRESET, CUSTOM = "/cgi/crm/v2/data", "/cgi/crm/custom/v2/data"
SYSTEM_USER = "-10000"
_CODES = {"contacts": 1, "tickets": 2, "follow_ups": 3, "calls": 4, "surveys": 5}
_OPERATORS = {"EQ", "N", "GT", "GTE", "LT", "LTE", "IN", "NIN", "BETWEEN", "IS", "ISN", "LIKE"}
_FSUID = re.compile(r"^FSUID_[0-9A-F]{32}$")
_SERVER_ERRORS = ("-1", "502", "50009", "-2")
_BAD_DATE = "2026-13-45 25:61"
_BAD_PICKLIST = "??未定义选项??"

_CASE_STATUS = {"pending": "挂起", "resolved": "已解决", "closed": "已关闭"}
_CASE_TYPE = {"complaint": "投诉", "consultation": "咨询", "appointment": "预约", "other": "其他"}
_CASE_SOURCE = {"phone": "电话", "online": "在线", "walk_in": "到院", "wechat": "微信", "email": "邮件"}
_PRIORITY = {"high": "高", "medium": "中", "low": "低"}
_FU_KIND = {"revisit": "回访", "callback": "回电"}
_FU_STATUS = {"planned": "待回访", "done": "已完成", "cancelled": "已取消"}
_DIRECTION = {"inbound": "呼入", "outbound": "呼出", "missed": "未接"}
_PURPOSE = {"booking": "预约挂号", "consultation": "咨询", "complaint": "投诉", "other": "其他"}
_PICKLIST_FIELD = {"tickets": "status", "follow_ups": "follow_up_status", "calls": "call_type"}

#: Writable objects: field → type ("employee" lists, "number" strings, "date" epoch ms).
WRITABLE: dict[str, dict[str, str]] = {
    "object_perf__c": {
        "field_employee__c": "employee",
        "owner": "employee",
        "field_score__c": "number",
        "field_rank__c": "number",
        "field_bonus_pct__c": "number",
    },
    "object_alert__c": {"owner": "employee", "field_due__c": "date"},
    "ScheduleObj": {"owner": "employee", "begin_time": "date", "end_time": "date"},
}


@dataclass(frozen=True)
class ShareCrmCredentials:
    app_id: str = "FSAID_sandbox01"
    app_secret: str = "sandbox-app-secret-0f1e2d3c4b5a"
    permanent_code: str = "5A4B3C2D1E0F5A4B3C2D1E0F5A4B3C2D"
    corp_id: str = "FSCID_SANDBOX0001"


def envelope(code: int = 0, message: str = "OK", **fields: Any) -> Response:
    trace = f"E-O.sandbox.1000-{hashlib.sha1(repr(fields).encode()).hexdigest()[:8]}"
    description = "success" if code == 0 else message
    return json_response(
        200,
        {
            "traceId": trace,
            "errorCode": code,
            "errorMessage": message,
            "errorDescription": description,
            **fields,
        },
    )


def open_user_id(key: int) -> str:
    return f"FSUID_{hashlib.md5(f'agent:{key}'.encode()).hexdigest().upper()}"


def object_id(entity: str, key: int, created: datetime) -> str:
    """Like a MongoDB ObjectId: creation time first, so ids sort roughly by creation."""
    return f"{int(created.timestamp()):08x}{_CODES[entity]:04x}{key:012x}"


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _day_ms(day: date) -> int:
    return int(datetime.combine(day, datetime.min.time(), tzinfo=CLINIC_TZ).timestamp() * 1000)


def sandbox_mapping() -> str:
    """A mapping override that adds this sandbox's survey object (``object_survey__c``) to the bundled one."""
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


@dataclass
class ShareCrmApp:
    """The ShareCRM sandbox app. Build with :func:`create_app`, serve with ``start_sandbox``."""

    clinic: Clinic
    credentials_: ShareCrmCredentials = field(default_factory=ShareCrmCredentials)
    call_object: str = "TelesalesRecordObj"
    invalid_visible: bool = True
    daily_quota: int | None = None
    rate_limit_calls: int = 100
    rate_limit_window_s: float = 20.0
    token_clock: Callable[[], float] = time.monotonic
    name: str = "sharecrm"

    def __post_init__(self) -> None:
        self.objects = {
            "ContactObj": "contacts",
            "CasesObj": "tickets",
            "ActiveRecordObj": "follow_ups",
            self.call_object: "calls",
            "object_survey__c": "surveys",
        }
        self._tokens: dict[str, tuple[float, float]] = {}  # token → (issued, expires), real seconds
        self._issued = 0
        self._index: dict[str, tuple[int, list[str], list[int]]] = {}
        self._ids: dict[str, dict[str, int]] = {}
        self.written: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in WRITABLE}
        self._write_seq = itertools.count(1)
        self._server_errors = itertools.cycle(_SERVER_ERRORS)
        self._quota_day: date | None = None
        self.quota_used = 0
        self._users = {open_user_id(a.key): a for a in self.clinic.agents}
        self._departments = {
            name: 1000 + i for i, name in enumerate(sorted({a.department for a in self.clinic.agents}))
        }

    # ---- framework protocol -------------------------------------------------------------------

    def routes(self) -> list[Route]:
        data = r"/cgi/crm(?P<custom>/custom)?/v2/data/"
        return [
            route("POST", r"/cgi/corpAccessToken/get/V2", self._token, data=False),
            route("POST", r"/cgi/user/getByMobile", self._by_mobile),
            route("POST", r"/cgi/user/list", self._user_list),
            route("POST", r"/cgi/department/list", self._department_list),
            route("POST", data + "query", self._query),
            route("POST", data + "get", self._get),
            route("POST", data + "create", self._create),
            route("POST", data + "update", self._update),
        ]

    def fault_response(self, fault: str) -> Response:
        if fault == "rate_limit_burst":
            return envelope(30004, "接口调用频率超过限制")
        code = next(self._server_errors)
        if code == "502":
            return Response(502, b"<html><body>502 Bad Gateway</body></html>", {"Content-Type": "text/html"})
        return envelope(int(code), "系统繁忙，请稍后重试")

    def not_found(self, method: str, path: str) -> Response:
        return json_response(404, {"errorCode": 404, "errorMessage": f"no such interface {method} {path}"})

    def expire_tokens(self) -> None:
        self._tokens.clear()

    def state(self) -> dict[str, Any]:
        now = self.token_clock()
        return {
            "tokens_issued": self._issued,
            "tokens_valid": sum(1 for _, expires in self._tokens.values() if expires > now),
            "quota_used_today": self.quota_used,
            "daily_quota": self.daily_quota,
            "invalid_visible": self.invalid_visible,
            "written": {name: len(records) for name, records in self.written.items()},
        }

    def truth(self, entity: str) -> dict[str, TruthRow]:
        """``_id`` (``openUserId`` for agents) → the record as a faithful sync sees it: an invalidated
        record's modification time is its invalidation."""
        if entity == "agents":
            return {
                open_user_id(a.key): TruthRow(a.key, a.created, a.modified, None, None)
                for a in self.clinic.agents
            }
        out = {}
        for row in self.clinic.truth(entity):
            modified = row.modified
            if row.deleted == "soft" and row.deleted_at is not None:
                modified = max(modified, row.deleted_at)
            out[object_id(entity, row.key, row.created)] = row._replace(modified=modified)
        return out

    def credentials(self) -> dict[str, str]:
        c = self.credentials_
        return {
            "app_id": c.app_id,
            "app_secret": c.app_secret,
            "permanent_code": c.permanent_code,
            "operator_mobile": self.operator().mobile,
            "operator_open_user_id": open_user_id(self.operator().key),
        }

    def config_snippet(self, base_url: str, source: str) -> str:
        c = self.credentials_
        return (
            f"[sources.{source}]\n"
            'kind = "sharecrm"\n'
            f'base_url = "{base_url}"\n'
            f'app_id = "{c.app_id}"\n'
            f'app_secret = "{c.app_secret}"\n'
            f'permanent_code = "{c.permanent_code}"\n'
            f'operator_mobile = "{self.operator().mobile}"\n'
        )

    def operator(self) -> Agent:
        """The CRM administrator whose mobile the config snippet names."""
        return next(a for a in self.clinic.agents if a.admin and a.active)

    # ---- gate: limits, auth, quota ------------------------------------------------------------

    def _over_limit(self, request: Request, calls: int, window: float) -> bool:
        times = request.counters.timestamps(f"{request.method} {request.path}")
        return bool(times) and len(times) - bisect.bisect_left(times, times[-1] - window) > calls

    def _gate(self, request: Request, *, crm: bool) -> tuple[dict[str, Any], Agent | None, Response | None]:
        """The body, the operator (CRM calls) and an error reply, in the gateway's order of checks."""
        try:
            body = request.json()
        except ValueError:
            return {}, None, envelope(15002, "请求体不是合法的JSON")
        if not isinstance(body, dict):
            return {}, None, envelope(15002, "请求体不是合法的JSON")
        if self._over_limit(request, self.rate_limit_calls, self.rate_limit_window_s):
            return body, None, envelope(30004, "接口调用频率超过限制")
        issued = self._tokens.get(str(body.get("corpAccessToken")))
        if (
            issued is None
            or issued[1] <= self.token_clock()
            or body.get("corpId") != self.credentials_.corp_id
        ):
            return body, None, envelope(20016, "the cropId,cropAccessToken or authorization is error")
        operator = None
        if crm:
            user = body.get("currentOpenUserId")
            if not isinstance(user, str) or not _FSUID.match(user):
                return body, None, envelope(11008, "currentOpenUserId 不能为空或不合法")
            operator = self._users.get(user)
            if operator is None:
                return body, None, envelope(20012, "openUserId不存在")
        day = self.clinic.now.astimezone(CLINIC_TZ).date()
        if day != self._quota_day:
            self._quota_day, self.quota_used = day, 0
        self.quota_used += 1
        if self.daily_quota is not None and self.quota_used > self.daily_quota:
            return body, None, envelope(30002, "企业今日API调用次数已用完")
        return body, operator, None

    # ---- auth and directory -------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = {}
        c = self.credentials_
        if not isinstance(body, dict) or body.get("appId") != c.app_id:
            return envelope(20006, "appId不存在或者appSecret错误")
        if body.get("appSecret") != c.app_secret:
            return envelope(10006, "the parameter appSecret is missing or illegal")
        if body.get("permanentCode") != c.permanent_code:
            return envelope(20015, "permanentCode错误")
        if self._over_limit(request, 10, 60.0):
            return envelope(30004, "获取token过于频繁")
        now = self.token_clock()
        newest = max(self._tokens.items(), key=lambda item: item[1][0], default=None)
        if newest is None or now - newest[1][0] >= 6600 or newest[1][1] <= now:
            self._issued += 1
            token = hashlib.sha256(f"{self.clinic.seed}:{self._issued}".encode()).hexdigest()[:32].upper()
            self._tokens[token] = (now, now + 7200)
            newest = (token, self._tokens[token])
        token, (_, expires) = newest
        return json_response(
            200,
            {
                "errorCode": 0,
                "errorMessage": "success",
                "corpAccessToken": token,
                "corpId": c.corp_id,
                "expiresIn": int(expires - now),
            },
        )

    def _by_mobile(self, request: Request) -> Response:
        body, _, error = self._gate(request, crm=False)
        if error:
            return error
        found = [self._user(a) for a in self.clinic.agents if a.mobile == body.get("mobile")]
        return envelope(empList=found)

    def _user_list(self, request: Request) -> Response:
        body, _, error = self._gate(request, crm=False)
        if error:
            return error
        if body.get("departmentId") != 999999 and not body.get("fetchChild"):
            wanted = body.get("departmentId")
            return envelope(
                userList=[
                    self._user(a) for a in self.clinic.agents if self._departments[a.department] == wanted
                ]
            )
        return envelope(userList=[self._user(a) for a in self.clinic.agents])

    def _department_list(self, request: Request) -> Response:
        _, _, error = self._gate(request, crm=False)
        if error:
            return error
        departments = [{"id": 999999, "name": "全公司", "parentId": 0, "order": 0}]
        departments += [
            {"id": i, "name": n, "parentId": 999999, "order": i} for n, i in self._departments.items()
        ]
        return envelope(departments=departments)

    def _user(self, agent: Agent) -> dict[str, Any]:
        department = self._departments[agent.department]
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
            "departmentIds": [department],
            "mainDepartmentId": department,
            "isStop": not agent.active,
            "status": "NORMAL" if agent.active else "STOP",
            "employeeNumber": f"E{agent.key + 1:04d}",
        }

    # ---- rendering clinic records -------------------------------------------------------------

    def _index_of(self, entity: str) -> tuple[list[str], list[int]]:
        """Ids in ``_id`` order with their clinic keys, rebuilt when the clinic changes."""
        cached = self._index.get(entity)
        if cached is None or cached[0] != self.clinic.version:
            pairs = sorted((object_id(entity, r.key, r.created), r.key) for r in self.clinic.records(entity))
            self._index[entity] = (self.clinic.version, [p[0] for p in pairs], [p[1] for p in pairs])
            self._ids[entity] = {p[0]: p[1] for p in pairs}
        _, ids, keys = self._index[entity]
        return ids, keys

    def _visible(self, record: Any, operator: Agent | None) -> bool:
        if record.deleted == HARD_DELETED or (record.deleted == SOFT_DELETED and not self.invalid_visible):
            return False
        return operator is None or operator.admin or getattr(record, "owner", operator.key) == operator.key

    def _render(self, entity: str, record: Any, request: Request) -> dict[str, Any]:
        owner = self.clinic.agents[record.owner]
        modified = record.modified
        if record.deleted == SOFT_DELETED and record.deleted_at is not None:
            modified = max(modified, record.deleted_at)
        uid = open_user_id(owner.key)
        out: dict[str, Any] = {
            "_id": object_id(entity, record.key, record.created),
            "owner": [uid],
            "owner__r": {"id": uid, "name": owner.name},
            "created_by": [uid],
            "last_modified_by": [uid],
            "create_time": _ms(record.created),
            "last_modified_time": _ms(modified),
            "life_status": "invalid" if record.deleted == SOFT_DELETED else "normal",
            "lock_status": "0",
            "is_deleted": False,
            "record_type": "default__c",
            "data_own_department": ["999999"],
            "owner_department": owner.department,
        }
        out.update(getattr(self, f"_fields_{entity}")(record))
        broken = request.faults.malformation(out["_id"])
        if broken == "missing_id":
            del out["_id"]
        elif broken == "bad_picklist" and entity in _PICKLIST_FIELD:
            out[_PICKLIST_FIELD[entity]] = _BAD_PICKLIST
        elif broken is not None:
            out["last_modified_time"] = _BAD_DATE
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

    def _fields_contacts(self, c: Any) -> dict[str, Any]:
        return {"name": c.name, "mobile": c.mobile, "tel": c.phone, "email": c.email}

    def _fields_tickets(self, t: Any) -> dict[str, Any]:
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
            "first_response_time": _ms(t.first_response),
            "resolved_time": _ms(t.resolved),
            "satisfaction": None if t.satisfaction is None else str(t.satisfaction),
        }

    def _fields_follow_ups(self, f: Any) -> dict[str, Any]:
        return {
            "name": f.subject,
            "active_record_type": _FU_KIND.get(f.kind, "其他"),
            "active_record_content": f.outcome or f.subject,
            "related_object_data": self._related(f.contact, f.ticket),
            "due_date": _day_ms(f.due),
            "follow_up_status": _FU_STATUS[f.status],
            "completed_time": _ms(f.completed),
        }

    def _fields_calls(self, c: Any) -> dict[str, Any]:
        contact = self._ref("contacts", c.contact)
        return {
            "name": c.subject,
            "record_content": c.subject,
            "contact_id": contact and contact["id"],
            "related_object_data": self._related(c.contact, c.ticket),
            "related_api_names": ["ContactObj"],
            "call_type": _DIRECTION[c.direction],
            "call_purpose": _PURPOSE[c.purpose],
            "call_start_time": _ms(c.started),
            "call_duration": c.duration_s,
        }

    def _fields_surveys(self, s: Any) -> dict[str, Any]:
        contact, case = self._ref("contacts", s.contact), self._ref("tickets", s.ticket)
        return {
            "name": f"满意度调查{s.key + 1:06d}",
            "field_score__c": str(s.score),
            "field_comment__c": s.comment,
            "field_submitted__c": _ms(s.submitted),
            "field_contact__c": contact and contact["id"],
            "field_case__c": case and case["id"],
        }

    # ---- queries ------------------------------------------------------------------------------

    def _object(self, request: Request, body: Mapping[str, Any]) -> tuple[str, Response | None]:
        api = str((body.get("data") or {}).get("dataObjectApiName") or "")
        known = api in self.objects or api in WRITABLE
        if not known or api.endswith("__c") != bool(request.match["custom"]):
            return api, envelope(15002, f"对象 {api or '(空)'} 不存在")
        return api, None

    def _query(self, request: Request) -> Response:
        body, operator, error = self._gate(request, crm=True)
        if error:
            return error
        api, error = self._object(request, body)
        if error:
            return error
        data = body["data"]
        info = data.get("search_query_info") or {}
        limit, offset = info.get("limit", 20), info.get("offset", 0)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
            return envelope(15002, "limit 取值范围为1-100")
        if not isinstance(offset, int) or offset < 0 or offset % limit:
            return envelope(15002, "offset 必须是limit的整数倍")
        if offset > 10_000:
            return envelope(10013, "offset out of range 10000", errorDescription="offset 不能超过10000")
        filters = info.get("filters") or []
        if any(not isinstance(f, dict) or f.get("operator") not in _OPERATORS for f in filters):
            return envelope(15002, "filters 中有不支持的操作符")
        orders = info.get("orders") or [{"fieldName": "_id", "isAsc": True}]
        matches = self._matches(api, request, operator, filters, orders, offset + limit)
        page = matches[offset : offset + limit]
        projection = set(info.get("fieldProjection") or ())
        if projection:
            page = [{k: v for k, v in r.items() if k in projection or k == "_id"} for r in page]
        total = (
            len(self._matches(api, request, operator, filters, orders, None))
            if data.get("find_explicit_total_num", True)
            else 0
        )
        return envelope(data={"dataList": page, "offset": offset, "limit": limit, "total": total})

    def _matches(
        self,
        api: str,
        request: Request,
        operator: Agent | None,
        filters: list[dict[str, Any]],
        orders: list[dict[str, Any]],
        wanted: int | None,
    ) -> list[dict[str, Any]]:
        """Matching rows in order; under ``_id`` ascending order only the first ``wanted`` are built."""
        by_id = orders == [{"fieldName": "_id", "isAsc": True}]
        found = []
        for row in self._candidates(api, request, operator, filters if by_id else []):
            if all(_holds(row, f) for f in filters):
                found.append(row)
                if by_id and wanted is not None and len(found) >= wanted:
                    break
        if not by_id:
            for order in reversed(orders):
                found.sort(
                    key=lambda r, o=order: _sort_key(r.get(o.get("fieldName"))),
                    reverse=not order.get("isAsc", True),
                )
        return found

    def _candidates(
        self, api: str, request: Request, operator: Agent | None, filters: list[dict[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        """Rows in ``_id`` order, starting after an ``_id GT``/``GTE`` filter's value (bisection)."""
        after = next(
            (f for f in filters if f.get("field_name") == "_id" and f["operator"] in ("GT", "GTE")), None
        )
        if api in WRITABLE:
            rows = [self.written[api][i] for i in sorted(self.written[api])]
            yield from (r for r in rows if after is None or _holds(r, after))
            return
        entity = self.objects[api]
        ids, keys = self._index_of(entity)
        start = 0
        if after is not None:
            value = str(after["field_values"][0])
            start = (bisect.bisect_right if after["operator"] == "GT" else bisect.bisect_left)(ids, value)
        records = self.clinic.records(entity)
        since = _since_filter(filters)
        for key in itertools.islice(keys, start, None):
            record = records[key]
            if not self._visible(record, operator):
                continue
            if since is not None and _ms(max(record.modified, record.deleted_at or record.modified)) < since:
                continue  # cheap pre-check of last_modified_time before rendering
            yield self._render(entity, record, request)

    def _get(self, request: Request) -> Response:
        body, operator, error = self._gate(request, crm=True)
        if error:
            return error
        api, error = self._object(request, body)
        if error:
            return error
        wanted = str(body["data"].get("objectDataId"))
        if api in WRITABLE:
            found = self.written[api].get(wanted)
        else:
            entity = self.objects[api]
            self._index_of(entity)
            key = self._ids[entity].get(wanted)
            record = None if key is None else self.clinic.records(entity)[key]
            found = (
                self._render(entity, record, request) if record and self._visible(record, operator) else None
            )
        return envelope(data=found) if found else envelope(15002, "数据不存在")

    # ---- writes -------------------------------------------------------------------------------

    def _write_target(self, request: Request) -> tuple[str, dict[str, Any], Agent | None, Response | None]:
        body, operator, error = self._gate(request, crm=True)
        if error:
            return "", {}, None, error
        api, error = self._object(request, body)
        values = (body.get("data") or {}).get("object_data")
        if error is None and api not in WRITABLE:
            error = envelope(15002, f"沙箱不支持写入对象 {api}")
        if error is None and (not isinstance(values, dict) or values.get("dataObjectApiName") != api):
            error = envelope(15002, "object_data.dataObjectApiName 缺失或不一致")
        if error is None:
            error = _check_types(WRITABLE[api], values)
        if error is None and body.get("triggerWorkFlow", True) is not False:
            request.counters.event("workflow_triggered")
        return api, values if isinstance(values, dict) else {}, operator, error

    def _create(self, request: Request) -> Response:
        api, values, operator, error = self._write_target(request)
        if error:
            return error
        assert operator is not None
        now = _ms(self.clinic.now)
        record_id = f"{int(self.clinic.now.timestamp()):08x}{0xF0:04x}{next(self._write_seq):012x}"
        uid = open_user_id(operator.key)
        self.written[api][record_id] = {
            "owner": [uid],
            "created_by": [uid],
            "life_status": "normal",
            "is_deleted": False,
            **{k: v for k, v in values.items() if k != "_id"},
            "_id": record_id,
            "create_time": now,
            "last_modified_time": now,
            "last_modified_by": [uid],
        }
        return envelope(dataId=record_id)

    def _update(self, request: Request) -> Response:
        api, values, operator, error = self._write_target(request)
        if error:
            return error
        assert operator is not None
        record = self.written[api].get(str(values.get("_id")))
        if record is None:
            return envelope(15002, "数据不存在或已作废")
        record.update({k: v for k, v in values.items() if k != "_id"})
        record["last_modified_time"] = _ms(self.clinic.now)
        record["last_modified_by"] = [open_user_id(operator.key)]
        return envelope()


def _check_types(schema: Mapping[str, str], values: Mapping[str, Any]) -> Response | None:
    for name, value in values.items():
        kind = schema.get(name)
        if kind == "employee" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return envelope(15002, f"字段 {name} 是人员字段，值必须是ID列表")
        if kind == "number" and value is not None and not (isinstance(value, str) and _is_number(value)):
            return envelope(15002, f"字段 {name} 是数字字段，值必须是数字字符串")
        if kind == "date" and value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return envelope(15002, f"字段 {name} 是日期字段，值必须是毫秒时间戳")
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _since_filter(filters: list[dict[str, Any]]) -> int | None:
    for f in filters:
        if f.get("field_name") == "last_modified_time" and f["operator"] in ("GT", "GTE"):
            try:
                return int(f["field_values"][0])
            except (TypeError, ValueError, IndexError):
                return None
    return None


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, "") if value is None else (1, str(value) if isinstance(value, list | dict) else value)


def _comparable(value: Any, wanted: Any) -> tuple[Any, Any]:
    """Numbers compare as numbers even when the filter sends numeric strings (epoch ms often are)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return value, float(wanted)
        except (TypeError, ValueError):
            return str(value), str(wanted)
    return str(value), str(wanted)


def _holds(row: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    """One search_query_info filter (§3.2); list fields (owner …) match if any element does."""
    value = row.get(spec.get("field_name"))
    values = list(spec.get("field_values") or [])
    op = spec["operator"]
    if op == "IS":
        return value in (None, "", [])
    if op == "ISN":
        return value not in (None, "", [])
    if isinstance(value, list):
        inside = any(str(v) in map(str, values) for v in value)
        return {"EQ": inside, "IN": inside, "N": not inside, "NIN": not inside}.get(op, False)
    if op in ("N", "NIN"):
        return value is None or not any(a == b for a, b in (_comparable(value, w) for w in values))
    if value is None or not values:
        return False
    if op in ("EQ", "IN"):
        return any(a == b for a, b in (_comparable(value, w) for w in values))
    if op == "LIKE":
        return str(values[0]) in str(value)
    if op == "BETWEEN":
        low, high = _comparable(value, values[0]), _comparable(value, values[-1])
        return low[1] <= low[0] <= high[1]
    mine, theirs = _comparable(value, values[0])
    return {"GT": mine > theirs, "GTE": mine >= theirs, "LT": mine < theirs, "LTE": mine <= theirs}[op]


def create_app(clinic: Clinic, **options: Any) -> ShareCrmApp:
    """The ShareCRM emulation; ``options`` are :class:`ShareCrmApp` fields (``invalid_visible``,
    ``daily_quota``, ``rate_limit_calls``, ``rate_limit_window_s``, ``call_object`` …)."""
    return ShareCrmApp(clinic, **options)
