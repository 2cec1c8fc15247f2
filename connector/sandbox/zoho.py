"""Zoho CRM v8 emulation over the synthetic clinic, built to crm-api/zoho.md (§1.2, §2.1, §2.4, §3, §4, §9).

Served on one host, which is both the accounts server and the ``api_domain`` the token names.

Auth
- ``POST /oauth/v2/token`` (params in the query or a urlencoded body): ``grant_type=refresh_token``
  with the sandbox's ``client_id``/``client_secret``/``refresh_token`` (:class:`ZohoCredentials`).
  Answers ``{access_token, api_domain: <sandbox base URL>, token_type: "Bearer", expires_in: 3600}``.
  Errors come back with HTTP 200 and only an ``error`` key (the SDK's reading: no ``access_token``
  means failure): wrong refresh token → ``invalid_code``, wrong client → ``invalid_client``, other
  grant → ``unsupported_grant_type``. At most 10 tokens per refresh token per rolling 10 minutes of
  *real* time (the injectable ``token_clock``, monotonic by default); the 11th gets HTTP 400
  ``{"error": "Access Denied", "error_description": "You have made too many requests continuously…"}``.
  Access tokens live 3600 s of real time; the ``expire_tokens`` fault invalidates all of them.
- Data calls need ``Authorization: Zoho-oauthtoken <token>``: no/other scheme → 401
  ``AUTHENTICATION_FAILURE``; unknown or expired token → 401 ``INVALID_TOKEN``.

Reads
- ``GET /crm/v8/{Module}``: ``fields`` required (400 ``REQUIRED_PARAM_MISSING``), ≤ 50 (400
  ``LIMIT_EXCEEDED``); only requested fields are returned, plus ``id`` (and ``$se_module`` with
  ``What_Id``); unknown field names are ignored. ``per_page`` 1–200 (else 400 ``INVALID_DATA``),
  ``page`` reaches the first 2,000 rows only (400 ``DISCRETE_PAGINATION_LIMIT_EXCEEDED``);
  ``info.next_page_token`` whenever ``more_records``; ``page_token`` continues by keyset (rows that
  change while paging move, never vanish), is bound to every other query parameter and to the
  ``If-Modified-Since`` header (400 ``TOKEN_BOUND_DATA_MISMATCH``), expires 24 virtual hours after
  issue (400 ``EXPIRED_VALUE``) and reaches 100,000 rows (then 400 ``PAGINATION_LIMIT_EXCEEDED``).
  ``sort_by`` = ``id`` (default, desc) | ``Created_Time`` | ``Modified_Time``; ``sort_order`` asc|desc;
  ``ids`` filters. ``If-Modified-Since`` (ISO-8601 with offset) keeps records with Modified_Time
  strictly after it; nothing left → 304, empty module without the header → 204.
- ``GET /crm/v8/{Module}/deleted?type=all|recycle|permanent`` (+ page/per_page, If-Modified-Since
  on ``deleted_time``), newest first; 204 when empty. Soft-deleted clinic records are ``recycle``,
  hard-deleted ones ``permanent`` (with null display_name/deleted_by/created_by, as documented).
- ``GET /crm/v8/users?type=AllUsers|ActiveUsers|DeactiveUsers|AdminUsers|CurrentUser`` (key ``users``),
  ``GET /crm/v8/org``, ``GET /crm/v8/settings/fields?module=…``.

Writes (``POST /{Module}`` insert → 201, ``PUT /{Module}`` update → 200, ``POST /{Module}/upsert`` → 200;
207 when mixed, 400 when every record failed; ≤ 100 records else 400 ``LIMIT_EXCEEDED``). Each record
is checked against the module's schema below: types (``INVALID_DATA`` with ``expected_data_type``,
picklists with ``supported_values``), mandatory fields on insert (``MANDATORY_NOT_FOUND``), unique
fields (``DUPLICATE_DATA``: Contacts.Email, Agent_Performance.Name). Upsert matches ``id``, then
``duplicate_check_fields`` in order (default: Contacts Email, Cases Subject, custom modules Name).
Read-only fields are ignored; fields outside the schema are stored as sent (so tests can read them
back). Written times are the clinic's virtual now. ``trigger`` omitted runs every trigger: each
successful record counts events ``trigger.workflow``/``approval``/``blueprint``; ``[]`` runs none.

Modules, fields and values emitted (picklists in English; ``picklist_language="zh"`` gives the values
in brackets). Datetimes are ``yyyy-MM-ddTHH:mm:ss+08:00``; dates ``yyyy-MM-dd``; ids 19-digit strings.
Every module also has ``Owner {id, name, email}``, ``Created_Time``, ``Modified_Time``,
``Created_By {id, name}``, ``Modified_By {id, name}``.
- Contacts: First_Name, Last_Name, Full_Name (surname + given name, no space), Email, Phone, Mobile,
  Description.
- Cases: Case_Number ("100001"…), Subject, Description,
  Status New (新建) | On Hold (挂起) | Escalated (已升级) | Closed (已关闭) — open → New, or Escalated for
  an unanswered high-priority complaint; pending → On Hold; resolved and closed → Closed;
  Priority High (高) | Medium (中) | Low (低);
  Case_Origin Phone (电话) | Web (在线) | Walk-in (到院) | WeChat (微信) | Email (邮件);
  Type Problem | Question | Appointment | Other (投诉 | 咨询 | 预约 | 其他);
  Case_Reason Complaint | Consultation | Appointment | Other (投诉 | 咨询 | 预约 | 其他);
  Related_To {id, name} (Contacts); Satisfaction_Score 1–5 or null; First_Response_Time datetime or null.
- Tasks: Subject, Due_Date (date), Status Not Started (未开始) | In Progress (进行中) | Deferred (已推迟) |
  Completed (已完成) | Cancelled (已取消) — planned → Not Started, In Progress or Deferred; done →
  Completed; cancelled → Cancelled (a custom value: Zoho's defaults have no cancelled state);
  Priority High (高) | Normal (普通) | Low (低); Closed_Time (set when Completed); Who_Id {id, name}
  (Contacts); What_Id {id, name} with "$se_module": "Cases" (or both null); Follow_Up_Type
  Revisit (回访) | Callback (回电); Description (the outcome).
- Calls: Subject, Call_Type Inbound (呼入) | Outbound (呼出) | Missed (未接);
  Call_Purpose Booking (预约挂号) | Consultation (咨询) | Complaint (投诉) | Other (其他);
  Call_Start_Time; Call_Duration "mm:ss"
  ("hh:mm:ss" from one hour); Call_Duration_in_seconds; Who_Id; What_Id + "$se_module".
- Patient_Surveys (custom): Name, Score (1–5), Comment, Submitted_Time, Contact_Name {id, name},
  Case {id, name}.
- Agent_Performance (custom, write target for scorecards): Name (unique), Agent (user lookup), Period,
  Composite_Score, Bonus_Tier, Rank, plus any other field as sent.
- users: id, first_name, last_name, full_name, email, mobile, phone (null), role {name, id},
  profile {name: Administrator | Standard, id}, status active | inactive, department (客服部, 公卫科 …),
  zuid, Reporting_To, time_zone "Asia/Shanghai", created_time, Modified_Time.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from json.encoder import encode_basestring as _quote  # C-accelerated JSON string
from typing import Any

from connector.sandbox.clinic import (
    CLINIC_TZ,
    HARD_DELETED,
    LIVE,
    Agent,
    Call,
    Clinic,
    Contact,
    FollowUp,
    Survey,
    Ticket,
    TruthRow,
)
from connector.sandbox.faults import MALFORMATIONS, Faults
from connector.sandbox.server import JSON_TYPE, Request, Response, Route, json_response, route

# ---- ids ------------------------------------------------------------------------------------

_ORG = 5_725_767_000
_SPACES = {
    "users": 0,
    "Contacts": 100_000_000,
    "Cases": 200_000_000,
    "Tasks": 300_000_000,
    "Calls": 400_000_000,
    "Patient_Surveys": 500_000_000,
    "roles": 800_000_000,
    "profiles": 850_000_000,
    "written": 900_000_000,
}
_BASE = _ORG * 10**9


def zoho_id(space: str, key: int) -> str:
    """The id Zoho shows for clinic record ``key`` of a module (or "users", "roles", "profiles")."""
    return str(_BASE + _SPACES[space] + key + 1)


# ---- vocabulary -------------------------------------------------------------------------------

_VOCAB: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "case_status": {"open": "New", "pending": "On Hold", "escalated": "Escalated", "closed": "Closed"},
        "priority": {"high": "High", "medium": "Medium", "low": "Low"},
        "origin": {
            "phone": "Phone",
            "online": "Web",
            "walk_in": "Walk-in",
            "wechat": "WeChat",
            "email": "Email",
        },
        "type": {
            "complaint": "Problem",
            "consultation": "Question",
            "appointment": "Appointment",
            "other": "Other",
        },
        "reason": {
            "complaint": "Complaint",
            "consultation": "Consultation",
            "appointment": "Appointment",
            "other": "Other",
        },
        "task_status": {
            "planned": "Not Started",
            "started": "In Progress",
            "deferred": "Deferred",
            "done": "Completed",
            "cancelled": "Cancelled",
        },
        "task_priority": {"high": "High", "normal": "Normal", "low": "Low"},
        "follow_up_type": {"revisit": "Revisit", "callback": "Callback"},
        "call_type": {"inbound": "Inbound", "outbound": "Outbound", "missed": "Missed"},
        "call_purpose": {
            "booking": "Booking",
            "consultation": "Consultation",
            "complaint": "Complaint",
            "other": "Other",
        },
    },
    "zh": {
        "case_status": {"open": "新建", "pending": "挂起", "escalated": "已升级", "closed": "已关闭"},
        "priority": {"high": "高", "medium": "中", "low": "低"},
        "origin": {"phone": "电话", "online": "在线", "walk_in": "到院", "wechat": "微信", "email": "邮件"},
        "type": {"complaint": "投诉", "consultation": "咨询", "appointment": "预约", "other": "其他"},
        "reason": {"complaint": "投诉", "consultation": "咨询", "appointment": "预约", "other": "其他"},
        "task_status": {
            "planned": "未开始",
            "started": "进行中",
            "deferred": "已推迟",
            "done": "已完成",
            "cancelled": "已取消",
        },
        "task_priority": {"high": "高", "normal": "普通", "low": "低"},
        "follow_up_type": {"revisit": "回访", "callback": "回电"},
        "call_type": {"inbound": "呼入", "outbound": "呼出", "missed": "未接"},
        "call_purpose": {"booking": "预约挂号", "consultation": "咨询", "complaint": "投诉", "other": "其他"},
    },
}
_TRIGGERS = ("workflow", "approval", "blueprint")
_SYSTEM_READ_ONLY = frozenset({"id", "Created_Time", "Modified_Time", "Created_By", "Modified_By"})
_BAD_DATE = "2026-13-45T25:61:00+08:00"
_BAD_PICKLIST = "??未定义选项??"


@dataclass(frozen=True)
class ZohoCredentials:
    """The sandbox's fixed OAuth client and refresh token (fake values, safe to print)."""

    client_id: str = "1000.SANDBOXCLIENT00000000000000000"
    client_secret: str = "sandbox0client0secret0000000000000000000000"
    refresh_token: str = "1000.sandbox0refresh0token.0000000000000000000000000000"


@dataclass(frozen=True)
class _Field:
    """One field of a module's write schema (and of ``/settings/fields``)."""

    type: str  # text, textarea, email, phone, integer, double, datetime, date, picklist, lookup, ownerlookup
    mandatory: bool = False
    picklist: str | None = None  # key into _VOCAB[lang]
    lookup: str | None = None  # target module; "*" = per "$se_module"
    unique: bool = False
    read_only: bool = False


_COMMON: dict[str, _Field] = {"Owner": _Field("ownerlookup")}
_SCHEMAS: dict[str, dict[str, _Field]] = {
    "Contacts": {
        "First_Name": _Field("text"),
        "Last_Name": _Field("text", mandatory=True),
        "Full_Name": _Field("text", read_only=True),
        "Email": _Field("email", unique=True),
        "Phone": _Field("phone"),
        "Mobile": _Field("phone"),
        "Description": _Field("textarea"),
    },
    "Cases": {
        "Case_Number": _Field("autonumber", read_only=True),
        "Subject": _Field("text", mandatory=True),
        "Status": _Field("picklist", mandatory=True, picklist="case_status"),
        "Priority": _Field("picklist", picklist="priority"),
        "Case_Origin": _Field("picklist", mandatory=True, picklist="origin"),
        "Type": _Field("picklist", picklist="type"),
        "Case_Reason": _Field("picklist", picklist="reason"),
        "Related_To": _Field("lookup", lookup="Contacts"),
        "Satisfaction_Score": _Field("integer"),
        "First_Response_Time": _Field("datetime"),
        "Description": _Field("textarea"),
    },
    "Tasks": {
        "Subject": _Field("text", mandatory=True),
        "Due_Date": _Field("date"),
        "Status": _Field("picklist", picklist="task_status"),
        "Priority": _Field("picklist", picklist="task_priority"),
        "Closed_Time": _Field("datetime", read_only=True),
        "Who_Id": _Field("lookup", lookup="Contacts"),
        "What_Id": _Field("lookup", lookup="*"),
        "Follow_Up_Type": _Field("picklist", picklist="follow_up_type"),
        "Description": _Field("textarea"),
    },
    "Calls": {
        "Subject": _Field("text", mandatory=True),
        "Call_Type": _Field("picklist", mandatory=True, picklist="call_type"),
        "Call_Purpose": _Field("picklist", picklist="call_purpose"),
        "Call_Start_Time": _Field("datetime", mandatory=True),
        "Call_Duration": _Field("text", mandatory=True),
        "Call_Duration_in_seconds": _Field("integer", read_only=True),
        "Who_Id": _Field("lookup", lookup="Contacts"),
        "What_Id": _Field("lookup", lookup="*"),
        "Description": _Field("textarea"),
    },
    "Patient_Surveys": {
        "Name": _Field("text", mandatory=True),
        "Score": _Field("integer"),
        "Comment": _Field("textarea"),
        "Submitted_Time": _Field("datetime"),
        "Contact_Name": _Field("lookup", lookup="Contacts"),
        "Case": _Field("lookup", lookup="Cases"),
    },
    "Agent_Performance": {
        "Name": _Field("text", mandatory=True, unique=True),
        "Agent": _Field("userlookup"),
        "Period": _Field("text"),
        "Composite_Score": _Field("double"),
        "Bonus_Tier": _Field("text"),
        "Rank": _Field("integer"),
    },
}
#: Module → the clinic entity behind it (custom write targets have none).
MODULE_ENTITIES: dict[str, str | None] = {
    "Contacts": "contacts",
    "Cases": "tickets",
    "Tasks": "follow_ups",
    "Calls": "calls",
    "Patient_Surveys": "surveys",
    "Agent_Performance": None,
}
_ENTITY_MODULES = {entity: module for module, entity in MODULE_ENTITIES.items() if entity}
_DEFAULT_DUPLICATE_FIELDS = {"Contacts": ("Email",), "Cases": ("Subject",)}  # custom modules: Name
_DATE_FIELDS = (
    "Created_Time",
    "Call_Start_Time",
    "Due_Date",
    "Submitted_Time",
    "First_Response_Time",
    "Closed_Time",
)
_PICKLIST_FIELDS = frozenset(
    name for schema in _SCHEMAS.values() for name, spec in schema.items() if spec.type == "picklist"
)
_DISPLAY_FIELD = {"Contacts": "Full_Name", "Patient_Surveys": "Name", "Agent_Performance": "Name"}


_DAY_PREFIX: dict[int, str] = {}
_OFFSET_S = int(CLINIC_TZ.utcoffset(None).total_seconds())
_OFFSET_TEXT = datetime(2000, 1, 1, tzinfo=CLINIC_TZ).isoformat()[-6:]  # "+08:00"
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@functools.cache
def _clock_texts() -> tuple[str, ...]:
    """``"HH:MM:SS+08:00"`` for every second of a day (about 6 MB, built on first use)."""
    return tuple(
        f"{h:02d}:{m:02d}:{s:02d}{_OFFSET_TEXT}" for h in range(24) for m in range(60) for s in range(60)
    )


def _iso(moment: datetime) -> str:
    """``yyyy-MM-ddTHH:mm:ss+08:00`` from per-day and per-second text tables: several times cheaper
    than ``astimezone().isoformat()``, and datetimes are most of a page's rendering cost."""
    day, second = divmod(int(moment.timestamp()) + _OFFSET_S, 86_400)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = _DAY_PREFIX[day] = (date(1970, 1, 1) + timedelta(days=day)).isoformat() + "T"
    return prefix + _clock_texts()[second]


def _text(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def _number(value: int | None) -> str:
    return "null" if value is None else str(value)


def _when(moment: datetime | None) -> str:
    return "null" if moment is None else '"' + _iso(moment) + '"'


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _error(status: int, code: str, message: str, **details: Any) -> Response:
    return json_response(status, {"code": code, "details": details, "message": message, "status": "error"})


@dataclass(slots=True, eq=False)
class Written:
    """A record created through the API (clinic records are rendered from the clinic instead)."""

    zid: int
    module: str
    values: dict[str, Any]
    created: datetime
    modified: datetime


@dataclass
class _PageToken:
    binding: tuple[Any, ...]
    last_key: tuple[int, ...]
    served: int
    page: int
    expires: datetime


@dataclass
class _View:
    """Rows of one query in sort order, with their sort keys for keyset continuation."""

    keys: list[tuple[int, ...]]
    rows: list[tuple[int, Any]]  # (zid, record)


@dataclass
class ZohoApp:
    """The Zoho CRM sandbox app. Build with :func:`create_app`, serve with ``start_sandbox``."""

    clinic: Clinic
    oauth: ZohoCredentials = field(default_factory=ZohoCredentials)
    picklist_language: str = "en"
    token_clock: Callable[[], float] = time.monotonic
    token_lifetime: int = 3600
    token_limit: tuple[int, float] = (10, 600.0)
    discrete_limit: int = 2000
    token_row_limit: int = 100_000
    name: str = "zoho"

    def __post_init__(self) -> None:
        if self.picklist_language not in _VOCAB:
            raise ValueError(f"picklist_language must be one of {', '.join(_VOCAB)}")
        self._vocab = _VOCAB[self.picklist_language]
        self._tokens: dict[str, float] = {}
        self._minted: dict[str, deque[float]] = {}
        self._issued = 0
        self._page_tokens: OrderedDict[str, _PageToken] = OrderedDict()
        self._page_token_seq = 0
        self._views: OrderedDict[tuple[Any, ...], _View] = OrderedDict()
        self._views_version = (-1, -1)
        self._index_cache: dict[tuple[Any, ...], dict[Any, int]] = {}
        self._fragments: OrderedDict[tuple[str, tuple[str, ...]], dict[int, tuple[datetime, bytes]]] = (
            OrderedDict()
        )
        self._written: dict[str, dict[int, Written]] = {module: {} for module in _SCHEMAS}
        self._overrides: dict[int, dict[str, Any]] = {}
        self._write_version = 0
        self._next_written = 0
        self._owners = [self._owner(agent) for agent in self.clinic.agents]
        self._roles = sorted({agent.role for agent in self.clinic.agents})
        self._getters = self._build_getters()
        self._pair_cache: dict[tuple[str, tuple[str, ...]], list[tuple[str, Callable[[Any], str]]]] = {}

    # ---- framework protocol -------------------------------------------------------------------

    def routes(self) -> list[Route]:
        module = r"(?P<module>[A-Za-z][A-Za-z0-9_]*)"
        return [
            route("POST", r"/oauth/v2/token", self._token, data=False),
            route("GET", r"/crm/v8/org", self._org),
            route("GET", r"/crm/v8/users", self._users),
            route("GET", r"/crm/v8/settings/fields", self._fields_meta),
            route("GET", rf"/crm/v8/{module}/deleted", self._deleted),
            route("POST", rf"/crm/v8/{module}/upsert", lambda r: self._write(r, "upsert")),
            route("GET", rf"/crm/v8/{module}", self._records),
            route("POST", rf"/crm/v8/{module}", lambda r: self._write(r, "insert")),
            route("PUT", rf"/crm/v8/{module}", lambda r: self._write(r, "update")),
        ]

    def fault_response(self, fault: str) -> Response:
        if fault == "rate_limit_burst":
            return _error(429, "TOO_MANY_REQUESTS", "You have exceeded the API limit")
        return _error(500, "INTERNAL_ERROR", "Internal Server Error")

    def not_found(self, method: str, path: str) -> Response:
        if any(r.pattern.fullmatch(path) for r in self.routes()):
            return _error(400, "INVALID_REQUEST_METHOD", "The http request method type is not a valid one")
        return _error(404, "INVALID_URL_PATTERN", "Please check if the URL trying to access is a correct one")

    def expire_tokens(self) -> None:
        self._tokens.clear()

    def state(self) -> dict[str, Any]:
        return {
            "tokens_issued": self._issued,
            "tokens_valid": sum(1 for expiry in self._tokens.values() if expiry > self.token_clock()),
            "page_tokens": len(self._page_tokens),
            "written": {module: len(records) for module, records in self._written.items()},
            "picklist_language": self.picklist_language,
        }

    def truth(self, entity: str) -> dict[str, TruthRow]:
        """Zoho id → truth row; records created through the API have ``key == -1``."""
        if entity == "agents":
            return {
                zoho_id("users", a.key): TruthRow(a.key, a.created, a.modified, None, None)
                for a in self.clinic.agents
            }
        module = _ENTITY_MODULES[entity]
        rows = {zoho_id(module, row.key): row for row in self.clinic.truth(entity)}
        for written in self._written[module].values():
            rows[str(written.zid)] = TruthRow(-1, written.created, written.modified, None, None)
        return rows

    def credentials(self) -> dict[str, str]:
        c = self.oauth
        return {"client_id": c.client_id, "client_secret": c.client_secret, "refresh_token": c.refresh_token}

    def config_snippet(self, base_url: str, source: str) -> str:
        c = self.oauth
        return (
            f"[sources.{source}]\n"
            'kind = "zoho"\n'
            f'accounts_url = "{base_url}"\n'
            f'api_domain = "{base_url}"\n'
            f'client_id = "{c.client_id}"\n'
            f'client_secret = "{c.client_secret}"\n'
            f'refresh_token = "{c.refresh_token}"\n'
        )

    def written_records(self, module: str) -> list[dict[str, Any]]:
        """Records created through the API in ``module`` (as Zoho would render them, with id)."""
        return [{"id": str(w.zid), **w.values} for w in self._written[module].values()]

    # ---- auth ---------------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        form = request.form()
        c = self.oauth
        if form.get("grant_type") != "refresh_token":
            return json_response(200, {"error": "unsupported_grant_type"})
        if form.get("client_id") != c.client_id or form.get("client_secret") != c.client_secret:
            return json_response(200, {"error": "invalid_client"})
        refresh = form.get("refresh_token", "")
        if refresh != c.refresh_token:
            return json_response(200, {"error": "invalid_code"})
        now = self.token_clock()
        limit, window = self.token_limit
        minted = self._minted.setdefault(refresh, deque())
        while minted and now - minted[0] >= window:
            minted.popleft()
        if len(minted) >= limit:
            return json_response(
                400,
                {
                    "error": "Access Denied",
                    "error_description": "You have made too many requests continuously. "
                    "Please try again after some time.",
                },
            )
        minted.append(now)
        self._issued += 1
        digest = hashlib.sha256(f"{self.clinic.seed}:{self._issued}".encode()).hexdigest()
        token = f"1000.{digest[:32]}.{digest[32:]}"
        self._tokens[token] = now + self.token_lifetime
        return json_response(
            200,
            {
                "access_token": token,
                "api_domain": request.base_url,
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
            },
        )

    def _auth(self, request: Request) -> Response | None:
        header = request.header("Authorization") or ""
        if not header.startswith("Zoho-oauthtoken "):
            return _error(401, "AUTHENTICATION_FAILURE", "Authentication failed")
        expiry = self._tokens.get(header[len("Zoho-oauthtoken ") :].strip())
        if expiry is None or expiry <= self.token_clock():
            return _error(401, "INVALID_TOKEN", "invalid oauth token")
        return None

    def _module(self, request: Request) -> tuple[str | None, Response | None]:
        module = request.match["module"]
        if module not in _SCHEMAS:
            return None, _error(
                400, "INVALID_MODULE", "the module name given seems to be invalid", resource_path_index=0
            )
        return module, None

    # ---- rendering ----------------------------------------------------------------------------

    def _owner(self, agent: Agent) -> dict[str, str]:
        return {"id": zoho_id("users", agent.key), "name": agent.name, "email": agent.email}

    def _user_ref(self, key: int) -> dict[str, str]:
        owner = self._owners[key]
        return {"id": owner["id"], "name": owner["name"]}

    def _build_getters(self) -> dict[str, dict[str, Callable[[Any], str]]]:
        """Per module, field → function of a clinic record giving the field's JSON text.

        Rendering straight to JSON text (owners and lookups pre-encoded, strings escaped by the C
        encoder) costs far less than building dicts and encoding them, and only the requested
        fields are rendered: this is what keeps a 50,000-record read to seconds.
        """
        v = self._vocab
        owners = [_ENCODER.encode(owner) for owner in self._owners]
        user_refs = [_ENCODER.encode(self._user_ref(key)) for key in range(len(self._owners))]
        contacts_base, cases_base = _BASE + _SPACES["Contacts"] + 1, _BASE + _SPACES["Cases"] + 1
        people, tickets = self.clinic.contacts, self.clinic.tickets

        def contact_ref(key: int | None) -> str:
            if key is None:
                return "null"
            return f'{{"id":"{contacts_base + key}","name":{_quote(people[key].name)}}}'

        def case_ref(key: int | None) -> str:
            if key is None:
                return "null"
            return f'{{"id":"{cases_base + key}","name":{_quote(tickets[key].subject)}}}'

        def case_status(t: Ticket) -> str:
            if t.status == "open" and t.category == "complaint" and t.priority == "high":
                return v["case_status"]["escalated"]
            return v["case_status"][
                "open" if t.status == "open" else "pending" if t.status == "pending" else "closed"
            ]

        def task_status(f: FollowUp) -> str:
            if f.status == "planned" and f.key % 4 in (0, 1):
                return v["task_status"]["started" if f.key % 4 == 0 else "deferred"]
            return v["task_status"][f.status]

        def task_priority(f: FollowUp) -> str:
            urgent = f.ticket is not None and tickets[f.ticket].category == "complaint"
            return v["task_priority"]["high" if urgent else "normal"]

        common: dict[str, Callable[[Any], str]] = {
            "Owner": lambda r: owners[r.owner],
            "Created_Time": lambda r: _when(r.created),
            "Modified_Time": lambda r: _when(r.modified),
            "Created_By": lambda r: user_refs[r.owner],
            "Modified_By": lambda r: user_refs[r.owner],
        }
        contacts: dict[str, Callable[[Contact], str]] = {
            "First_Name": lambda c: _quote(c.given),
            "Last_Name": lambda c: _quote(c.surname),
            "Full_Name": lambda c: _quote(c.surname + c.given),
            "Email": lambda c: _text(c.email),
            "Phone": lambda c: _text(c.phone),
            "Mobile": lambda c: _quote(c.mobile),
            "Description": lambda c: "null",
        }
        cases: dict[str, Callable[[Ticket], str]] = {
            "Case_Number": lambda t: f'"{t.number}"',
            "Subject": lambda t: _quote(t.subject),
            "Status": lambda t: _quote(case_status(t)),
            "Priority": lambda t: _quote(v["priority"][t.priority]),
            "Case_Origin": lambda t: _quote(v["origin"][t.channel]),
            "Type": lambda t: _quote(v["type"][t.category]),
            "Case_Reason": lambda t: _quote(v["reason"][t.category]),
            "Related_To": lambda t: contact_ref(t.contact),
            "Satisfaction_Score": lambda t: _number(t.satisfaction),
            "First_Response_Time": lambda t: _when(t.first_response),
            "Description": lambda t: "null",
        }
        tasks: dict[str, Callable[[FollowUp], str]] = {
            "Subject": lambda f: _quote(f.subject),
            "Due_Date": lambda f: f'"{f.due.isoformat()}"',
            "Status": lambda f: _quote(task_status(f)),
            "Priority": lambda f: _quote(task_priority(f)),
            "Closed_Time": lambda f: _when(f.completed if f.status == "done" else None),
            "Who_Id": lambda f: contact_ref(f.contact),
            "What_Id": lambda f: case_ref(f.ticket),
            "$se_module": lambda f: '"Cases"' if f.ticket is not None else "null",
            "Follow_Up_Type": lambda f: _quote(v["follow_up_type"][f.kind]),
            "Description": lambda f: _text(f.outcome),
        }
        calls: dict[str, Callable[[Call], str]] = {
            "Subject": lambda c: _quote(c.subject),
            "Call_Type": lambda c: _quote(v["call_type"][c.direction]),
            "Call_Purpose": lambda c: _quote(v["call_purpose"][c.purpose]),
            "Call_Start_Time": lambda c: _when(c.started),
            "Call_Duration": lambda c: f'"{_duration(c.duration_s)}"',
            "Call_Duration_in_seconds": lambda c: str(c.duration_s),
            "Who_Id": lambda c: contact_ref(c.contact),
            "What_Id": lambda c: case_ref(c.ticket),
            "$se_module": lambda c: '"Cases"' if c.ticket is not None else "null",
            "Description": lambda c: "null",
        }
        surveys: dict[str, Callable[[Survey], str]] = {
            "Name": lambda s: f'"满意度调查-{s.key + 1:06d}"',
            "Score": lambda s: str(s.score),
            "Comment": lambda s: _text(s.comment),
            "Submitted_Time": lambda s: _when(s.submitted),
            "Contact_Name": lambda s: contact_ref(s.contact),
            "Case": lambda s: case_ref(s.ticket),
        }
        modules: dict[str, dict[str, Any]] = {
            "Contacts": contacts,
            "Cases": cases,
            "Tasks": tasks,
            "Calls": calls,
            "Patient_Surveys": surveys,
            "Agent_Performance": {},
        }
        return {module: {**common, **own} for module, own in modules.items()}

    def _value(self, module: str, name: str, record: Any) -> Any:
        """One field of a clinic record as a Python value (duplicate checks, display names)."""
        getter = self._getters[module].get(name)
        return json.loads(getter(record)) if getter is not None else None

    def _page(
        self, module: str, rows: Sequence[tuple[int, Any]], fields: Sequence[str], faults: Faults
    ) -> bytes:
        """The JSON of a page's ``data`` items, reusing each record's fragment while it is unchanged.

        A fragment is keyed by the record's ``modified`` object: advance and touch replace it, API
        writes clear every fragment (lookup names may change). Malformed records are never cached.
        """
        cache_key = (module, tuple(fields))
        cache = self._fragments.get(cache_key)
        if cache is None:
            cache = self._fragments[cache_key] = {}
            if len(self._fragments) > 4:
                self._fragments.popitem(last=False)
        malformed = faults.malformed.active
        parts = []
        for zid, record in rows:
            kind = faults.malformation(str(zid)) if malformed else None
            entry = cache.get(zid)
            if kind is None and entry is not None and entry[0] is record.modified:
                parts.append(entry[1])
                continue
            text = self._render(module, zid, record, fields)
            if kind is not None:
                broken = json.loads(text)
                self._break(broken, kind)
                text = _ENCODER.encode(broken)
            fragment = text.encode()
            if kind is None:
                cache[zid] = (record.modified, fragment)
            parts.append(fragment)
        return b",".join(parts)

    def _render(self, module: str, zid: int, record: Any, fields: Sequence[str]) -> str:
        """One record as JSON text with ``id`` and the requested fields the module knows."""
        getters = self._getters[module]
        if isinstance(record, Written):
            values = record.values
            out: dict[str, Any] = {"id": str(zid)}
            for name in fields:
                if name in values or name in getters:
                    out[name] = values.get(name)
            return _ENCODER.encode(out)
        text = (
            "{"
            + ",".join([f'"id":"{zid}"', *[key + get(record) for key, get in self._pairs(module, fields)]])
            + "}"
        )
        override = self._overrides.get(zid)
        if override and any(name in override for name in fields):
            merged = json.loads(text)
            merged.update((name, override[name]) for name in fields if name in override)
            text = _ENCODER.encode(merged)
        return text

    def _pairs(self, module: str, fields: Sequence[str]) -> list[tuple[str, Callable[[Any], str]]]:
        """(``"field":`` JSON key text, getter) for the requested fields this module knows, memoised."""
        key = (module, tuple(fields))
        pairs = self._pair_cache.get(key)
        if pairs is None:
            getters = self._getters[module]
            pairs = self._pair_cache[key] = [
                (_quote(name) + ":", getters[name]) for name in fields if name in getters
            ]
        return pairs

    def _break(self, out: dict[str, Any], kind: str) -> None:
        """Malform a rendered record; kinds this record cannot express fall through to the next one."""
        start = MALFORMATIONS.index(kind)
        for candidate in MALFORMATIONS[start:] + MALFORMATIONS[:start]:
            if candidate == "missing_id":
                del out["id"]
                return
            if candidate == "bad_date":
                target = next((f for f in _DATE_FIELDS if out.get(f)), None)
                if target is None and out.get("Modified_Time"):
                    target = "Modified_Time"
            else:
                target = next((f for f in out if f in _PICKLIST_FIELDS and isinstance(out[f], str)), None)
            if target is not None:
                out[target] = _BAD_DATE if candidate == "bad_date" else _BAD_PICKLIST
                return

    # ---- record reads ---------------------------------------------------------------------------

    def _version(self) -> tuple[int, int]:
        return (self.clinic.version, self._write_version)

    def _rows(self, module: str) -> list[tuple[int, Any]]:
        entity = MODULE_ENTITIES[module]
        rows: list[tuple[int, Any]] = []
        if entity is not None:
            base = _BASE + _SPACES[module] + 1
            rows = [(base + r.key, r) for r in self.clinic.records(entity) if r.deleted == LIVE]
        rows.extend((w.zid, w) for w in self._written[module].values())
        return rows

    def _view(
        self, module: str, sort_by: str, desc: bool, since: float | None, ids: frozenset[int] | None
    ) -> _View:
        version = self._version()
        if version != self._views_version:  # keep only views of the current data: bounded memory
            self._views.clear()
            self._views_version = version
        cache_key = (module, sort_by, desc, since, ids)
        view = self._views.get(cache_key)
        if view is not None:
            self._views.move_to_end(cache_key)
            return view
        sign = -1 if desc else 1
        if sort_by == "id":

            def key_of(zid: int, record: Any) -> tuple[int, ...]:
                return (sign * zid,)
        else:
            attr = "modified" if sort_by == "Modified_Time" else "created"

            def key_of(zid: int, record: Any) -> tuple[int, ...]:
                return (sign * int(getattr(record, attr).timestamp()), sign * zid)

        pairs = []
        for zid, record in self._rows(module):
            if ids is not None and zid not in ids:
                continue
            if since is not None and record.modified.timestamp() <= since:
                continue
            pairs.append((key_of(zid, record), (zid, record)))
        pairs.sort(key=lambda pair: pair[0])
        view = _View([k for k, _ in pairs], [row for _, row in pairs])
        self._views[cache_key] = view
        if len(self._views) > 8:
            self._views.popitem(last=False)
        return view

    def _records(self, request: Request) -> Response:
        denied = self._auth(request)
        if denied:
            return denied
        module, bad = self._module(request)
        if bad or module is None:
            return bad  # type: ignore[return-value]
        q = request.query
        fields = list(dict.fromkeys(f.strip() for f in q.get("fields", "").split(",") if f.strip()))
        if not fields:
            return _error(
                400, "REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", param_name="fields"
            )
        if len(fields) > 50:
            return _error(
                400, "LIMIT_EXCEEDED", "the given fields exceeds the limit", limit=50, param_name="fields"
            )
        if "What_Id" in fields and "$se_module" not in fields:
            fields.append("$se_module")
        per_page, page, bad = _paging(q)
        if bad:
            return bad
        sort_by = q.get("sort_by", "id")
        if sort_by not in ("id", "Created_Time", "Modified_Time"):
            return _error(
                400,
                "INVALID_DATA",
                "invalid data",
                param_name="sort_by",
                supported_values=["id", "Created_Time", "Modified_Time"],
            )
        sort_order = q.get("sort_order", "desc")
        if sort_order not in ("asc", "desc"):
            return _error(
                400, "INVALID_DATA", "invalid data", param_name="sort_order", supported_values=["asc", "desc"]
            )
        ims_header = request.header("If-Modified-Since")
        since, bad = _since(ims_header)
        if bad:
            return bad
        ids = None
        if q.get("ids"):
            try:
                ids = frozenset(int(i) for i in q["ids"].split(",") if i.strip())
            except ValueError:
                return _error(400, "INVALID_DATA", "invalid data", param_name="ids")
        binding = (
            module,
            tuple(sorted((k, v) for k, v in q.items() if k not in ("page_token", "page"))),
            ims_header,
        )
        view = self._view(module, sort_by, sort_order == "desc", since, ids)
        token_value = q.get("page_token")
        if token_value:
            token = self._page_tokens.get(token_value)
            if token is None or token.expires <= self.clinic.now:
                return _error(400, "EXPIRED_VALUE", "the page token has expired", api_name="page_token")
            if token.binding != binding:
                return _error(
                    400,
                    "TOKEN_BOUND_DATA_MISMATCH",
                    "the parameters do not match the ones the page token was issued for",
                    param_name="page_token",
                )
            if token.served >= self.token_row_limit:
                return _error(
                    400,
                    "PAGINATION_LIMIT_EXCEEDED",
                    f"the page token can reach only {self.token_row_limit} records",
                    param_name="page_token",
                )
            start = bisect.bisect_right(view.keys, token.last_key)
            count = min(per_page, self.token_row_limit - token.served)
            served_before, page = token.served, token.page + 1
        else:
            if page * per_page > self.discrete_limit:
                return _error(
                    400,
                    "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                    f"You can only get the first {self.discrete_limit} records without using "
                    "page_token param",
                    limit=self.discrete_limit,
                )
            start, count, served_before = (page - 1) * per_page, per_page, (page - 1) * per_page
        rows = view.rows[start : start + count]
        if not rows:
            return Response(304 if ims_header else 204)
        more = start + len(rows) < len(view.rows)
        next_token = None
        expiry = self.clinic.now + timedelta(hours=24)
        if more:
            next_token = self._issue_page_token(
                _PageToken(binding, view.keys[start + len(rows) - 1], served_before + len(rows), page, expiry)
            )
        info = {
            "per_page": per_page,
            "count": len(rows),
            "page": page,
            "sort_by": sort_by,
            "sort_order": sort_order,
            "more_records": more,
            "next_page_token": next_token,
            "previous_page_token": None,
            "page_token_expiry": _iso(expiry) if next_token else None,
            "call": False,
            "email": False,
        }
        data = self._page(module, rows, fields, request.faults)
        body = b'{"data":[' + data + b'],"info":' + _ENCODER.encode(info).encode() + b"}"
        return Response(200, body, {"Content-Type": JSON_TYPE})

    def _issue_page_token(self, token: _PageToken) -> str:
        self._page_token_seq += 1
        digest = hashlib.sha1(f"{self.clinic.seed}:{self._page_token_seq}".encode()).hexdigest()
        value = f"{self._page_token_seq:08x}{digest[:32]}"
        self._page_tokens[value] = token
        if len(self._page_tokens) > 20_000:
            self._page_tokens.popitem(last=False)
        return value

    def _deleted(self, request: Request) -> Response:
        denied = self._auth(request)
        if denied:
            return denied
        module, bad = self._module(request)
        if bad or module is None:
            return bad  # type: ignore[return-value]
        kind = request.query.get("type", "all")
        if kind not in ("all", "recycle", "permanent"):
            return _error(
                400,
                "INVALID_DATA",
                "invalid data",
                param_name="type",
                supported_values=["all", "recycle", "permanent"],
            )
        per_page, page, bad = _paging(request.query)
        if bad:
            return bad
        since, bad = _since(request.header("If-Modified-Since"))
        if bad:
            return bad
        entity = MODULE_ENTITIES[module]
        gone = []
        if entity is not None:
            for record in self.clinic.records(entity):
                if record.deleted == LIVE or (since is not None and record.deleted_at.timestamp() <= since):
                    continue
                permanent = record.deleted == HARD_DELETED
                if kind == "all" or (kind == "permanent") == permanent:
                    gone.append(record)
        gone.sort(key=lambda r: (r.deleted_at, r.key), reverse=True)
        chunk = gone[(page - 1) * per_page : page * per_page]
        if not chunk:
            return Response(204)
        data = [self._deleted_item(module, record) for record in chunk]
        info = {
            "per_page": per_page,
            "count": len(data),
            "page": page,
            "more_records": page * per_page < len(gone),
        }
        return json_response(200, {"data": data, "info": info})

    def _deleted_item(self, module: str, record: Any) -> dict[str, Any]:
        permanent = record.deleted == HARD_DELETED
        display = self._value(module, _DISPLAY_FIELD.get(module, "Subject"), record)
        return {
            "id": zoho_id(module, record.key),
            "display_name": None if permanent else display,
            "type": "permanent" if permanent else "recycle",
            "deleted_time": _iso(record.deleted_at),
            "deleted_by": None if permanent else self._user_ref(record.owner),
            "created_by": None if permanent else self._user_ref(record.owner),
        }

    def _users(self, request: Request) -> Response:
        denied = self._auth(request)
        if denied:
            return denied
        kinds: dict[str, Callable[[Agent], bool]] = {
            "AllUsers": lambda a: True,
            "ActiveUsers": lambda a: a.active,
            "DeactiveUsers": lambda a: not a.active,
            "ActiveConfirmedUsers": lambda a: a.active,
            "AdminUsers": lambda a: a.admin,
            "ActiveConfirmedAdmins": lambda a: a.admin and a.active,
            "CurrentUser": lambda a: a.key == 0,
        }
        kind = request.query.get("type", "AllUsers")
        if kind not in kinds:
            return _error(
                400, "INVALID_DATA", "invalid data", param_name="type", supported_values=list(kinds)
            )
        per_page, page, bad = _paging(request.query)
        if bad:
            return bad
        ims = request.header("If-Modified-Since")
        since, bad = _since(ims)
        if bad:
            return bad
        chosen = [
            a
            for a in self.clinic.agents
            if kinds[kind](a) and (since is None or a.modified.timestamp() > since)
        ]
        chunk = chosen[(page - 1) * per_page : page * per_page]
        if not chunk:
            return Response(304 if ims else 204)
        info = {
            "per_page": per_page,
            "count": len(chunk),
            "page": page,
            "more_records": page * per_page < len(chosen),
        }
        return json_response(200, {"users": [self._user(a) for a in chunk], "info": info})

    def _user(self, agent: Agent) -> dict[str, Any]:
        supervisor = self.clinic.agents[0]
        return {
            "id": zoho_id("users", agent.key),
            "first_name": agent.given,
            "last_name": agent.surname,
            "full_name": agent.name,
            "email": agent.email,
            "mobile": agent.mobile,
            "phone": None,
            "role": {"name": agent.role, "id": zoho_id("roles", self._roles.index(agent.role))},
            "profile": {
                "name": "Administrator" if agent.admin else "Standard",
                "id": zoho_id("profiles", 0 if agent.admin else 1),
            },
            "status": "active" if agent.active else "inactive",
            "confirm": True,
            "department": agent.department,
            "zuid": str(60_000_000 + agent.key),
            "Reporting_To": None if agent.admin else {"id": zoho_id("users", 0), "name": supervisor.name},
            "time_zone": "Asia/Shanghai",
            "created_time": _iso(agent.created),
            "Modified_Time": _iso(agent.modified),
        }

    def _org(self, request: Request) -> Response:
        denied = self._auth(request)
        if denied:
            return denied
        org = {
            "id": str(_BASE),
            "company_name": self.clinic.name,
            "primary_email": self.clinic.agents[0].email,
            "time_zone": "Asia/Shanghai",
            "country": "China",
            "country_code": "CN",
            "currency": "CNY",
            "iso_code": "CNY",
            "currency_symbol": "¥",
            "zgid": str(70_000_000 + self.clinic.seed % 1_000_000),
            "license_details": {
                "paid": True,
                "paid_type": "enterprise",
                "trial_type": None,
                "users_license_purchased": len(self.clinic.agents),
            },
        }
        return json_response(200, {"org": [org]})

    def _fields_meta(self, request: Request) -> Response:
        denied = self._auth(request)
        if denied:
            return denied
        module = request.query.get("module", "")
        if module not in _SCHEMAS:
            return _error(
                400, "INVALID_MODULE", "the module name given seems to be invalid", param_name="module"
            )
        fields = []
        for name, spec in {**_COMMON, **_SCHEMAS[module]}.items():
            values = list(dict.fromkeys(self._vocab[spec.picklist].values())) if spec.picklist else []
            fields.append(
                {
                    "api_name": name,
                    "data_type": spec.type,
                    "system_mandatory": spec.mandatory,
                    "read_only": spec.read_only,
                    "custom_field": module in ("Patient_Surveys", "Agent_Performance")
                    or name in ("Satisfaction_Score", "First_Response_Time", "Follow_Up_Type"),
                    "unique": {"casesensitive": False} if spec.unique else {},
                    "pick_list_values": [{"display_value": x, "actual_value": x} for x in values],
                    "lookup": {"module": {"api_name": spec.lookup}}
                    if spec.lookup and spec.lookup != "*"
                    else {},
                }
            )
        return json_response(200, {"fields": fields})

    # ---- writes ---------------------------------------------------------------------------------

    def _write(self, request: Request, mode: str) -> Response:
        denied = self._auth(request)
        if denied:
            return denied
        module, bad = self._module(request)
        if bad or module is None:
            return bad  # type: ignore[return-value]
        try:
            body = request.json()
        except ValueError:
            return _error(400, "INVALID_DATA", "body is not in json format", expected_data_type="jsonobject")
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            return _error(
                400, "INVALID_DATA", "invalid data", expected_data_type="jsonarray", api_name="data"
            )
        data = body["data"]
        if not data:
            return _error(400, "REQUIRED_PARAM_MISSING", "data is empty", api_name="data")
        if len(data) > 100:
            return _error(
                400, "LIMIT_EXCEEDED", "the number of records exceeds the limit", limit=100, api_name="data"
            )
        triggers = body.get("trigger", list(_TRIGGERS))
        if not isinstance(triggers, list) or any(t not in _TRIGGERS for t in triggers):
            return _error(
                400, "INVALID_DATA", "invalid data", api_name="trigger", supported_values=list(_TRIGGERS)
            )
        schema = {**_COMMON, **_SCHEMAS[module]}
        default_keys = _DEFAULT_DUPLICATE_FIELDS.get(module, ("Name",) if "Name" in schema else ())
        keys = body.get("duplicate_check_fields", list(default_keys))
        if not isinstance(keys, list) or any(k not in schema for k in keys):
            return _error(400, "INVALID_DATA", "invalid data", api_name="duplicate_check_fields")
        results = [
            self._write_one(module, schema, index, item, mode, keys) for index, item in enumerate(data)
        ]
        succeeded = sum(1 for r in results if r["status"] == "success")
        for trigger in triggers:
            if succeeded:
                request.counters.event(f"trigger.{trigger}", succeeded)
        if succeeded == len(results):
            status = 201 if mode == "insert" else 200
        else:
            status = 207 if succeeded else 400
        return json_response(status, {"data": results})

    def _write_one(
        self, module: str, schema: Mapping[str, _Field], index: int, item: Any, mode: str, keys: Sequence[str]
    ) -> dict[str, Any]:
        """One record of a write: its target, validation, storage, and its result item."""
        path = f"$.data[{index}]"
        try:
            if not isinstance(item, dict):
                raise _RecordError(
                    "INVALID_DATA", "invalid data", json_path=path, expected_data_type="jsonobject"
                )
            target, duplicate_field = self._target(module, item, mode, keys, path)
            values = self._validated(module, schema, item, path, target)
        except _RecordError as exc:
            return _failure(exc.code, exc.message, **exc.details)
        record = self._apply(module, target, values)
        result: dict[str, Any] = {
            "code": "SUCCESS",
            "details": {
                "Modified_Time": record["Modified_Time"],
                "Modified_By": self._user_ref(0),
                "Created_Time": record["Created_Time"],
                "id": record["id"],
                "Created_By": record["Created_By"],
            },
            "message": "record added" if target is None else "record updated",
            "status": "success",
        }
        if mode == "upsert":
            result["action"] = "insert" if target is None else "update"
            result["duplicate_field"] = duplicate_field
        return result

    def _target(
        self, module: str, item: Mapping[str, Any], mode: str, keys: Sequence[str], path: str
    ) -> tuple[int | None, str | None]:
        """The record a write updates (None: insert) and the duplicate-check field that found it."""
        if mode == "update" or (mode == "upsert" and "id" in item):
            if "id" not in item:
                raise _RecordError(
                    "MANDATORY_NOT_FOUND", "required field not found", api_name="id", json_path=f"{path}.id"
                )
            target = self._find(module, item["id"])
            if target is None:
                raise _RecordError(
                    "INVALID_DATA", "the id given seems to be invalid", api_name="id", json_path=f"{path}.id"
                )
            return target, None
        if mode == "upsert":
            for name in keys:
                if item.get(name) not in (None, ""):
                    found = self._lookup(module, name, item[name])
                    if found is not None:
                        return found, name
        return None, None

    def _validated(
        self,
        module: str,
        schema: Mapping[str, _Field],
        item: Mapping[str, Any],
        path: str,
        target: int | None,
    ) -> dict[str, Any]:
        """The values to store: types checked, read-only fields dropped, mandatory and unique enforced."""
        values: dict[str, Any] = {}
        for name, value in item.items():
            spec = schema.get(name)
            if name in _SYSTEM_READ_ONLY or name == "$se_module" or (spec is not None and spec.read_only):
                continue
            if spec is None:
                values[name] = value  # outside the schema: stored as sent
                continue
            try:
                values[name] = self._check(spec, name, value, item)
            except _RecordError as exc:
                exc.details["json_path"] = f"{path}.{name}"
                raise
            if name == "What_Id" and values[name] is not None:
                values["$se_module"] = item.get("$se_module")
        if target is None:
            for name, spec in schema.items():
                if spec.mandatory and values.get(name) in (None, ""):
                    raise _RecordError(
                        "MANDATORY_NOT_FOUND",
                        "required field not found",
                        api_name=name,
                        json_path=f"{path}.{name}",
                    )
        for name, spec in schema.items():
            if spec.unique and values.get(name) not in (None, ""):
                holder = self._lookup(module, name, values[name])
                if holder is not None and holder != target:
                    raise _RecordError(
                        "DUPLICATE_DATA",
                        "duplicate data",
                        api_name=name,
                        json_path=f"{path}.{name}",
                        id=str(holder),
                        duplicate_record={"id": str(holder), "module": {"api_name": module}},
                        more_records=False,
                    )
        return values

    def _check(self, spec: _Field, name: str, value: Any, item: Mapping[str, Any]) -> Any:
        """The stored form of ``value``; raises :class:`_RecordError` when Zoho would reject it."""
        if value is None:
            return None
        kind = spec.type
        if kind in ("ownerlookup", "userlookup"):
            agent_key = self._user_key(_lookup_id(value))
            if agent_key is None:
                raise _RecordError(
                    "INVALID_DATA",
                    "the id given seems to be invalid",
                    api_name=name,
                    expected_data_type="lookup",
                )
            return self._owners[agent_key] if kind == "ownerlookup" else self._user_ref(agent_key)
        if kind == "lookup":
            target_module = item.get("$se_module") if spec.lookup == "*" else spec.lookup
            ref = _lookup_id(value)
            found = (
                self._find(target_module, ref)
                if isinstance(target_module, str) and target_module in _SCHEMAS
                else None
            )
            if found is None:
                raise _RecordError(
                    "INVALID_DATA",
                    "the id given seems to be invalid",
                    api_name=name,
                    expected_data_type="lookup",
                )
            return {"id": str(found), "name": self._display(target_module, found)}
        if kind == "picklist":
            allowed = list(dict.fromkeys(self._vocab[spec.picklist or ""].values()))
            if value not in allowed:
                raise _RecordError("INVALID_DATA", "invalid data", api_name=name, supported_values=allowed)
            return value
        if kind == "datetime":
            parsed = _parse_datetime(value)
            if parsed is None:
                raise _RecordError(
                    "INVALID_DATA", "invalid data", api_name=name, expected_data_type="datetime"
                )
            return _iso(parsed)
        if not _VALID[kind](value):
            raise _RecordError("INVALID_DATA", "invalid data", api_name=name, expected_data_type=kind)
        return value

    def _apply(self, module: str, target: int | None, values: dict[str, Any]) -> dict[str, Any]:
        """Store a validated write; returns id and system fields for the success details."""
        now = self.clinic.now
        self._write_version += 1
        self._index_cache.clear()
        self._fragments.clear()
        if target is None:
            self._next_written += 1
            zid = _BASE + _SPACES["written"] + self._next_written
            owner = values.pop("Owner", None) or self._owners[0]
            stamp = _iso(now)
            written = Written(zid, module, {}, now, now)
            written.values = {
                "Owner": owner,
                "Created_Time": stamp,
                "Modified_Time": stamp,
                "Created_By": self._user_ref(0),
                "Modified_By": self._user_ref(0),
                **values,
            }
            if module == "Calls" and isinstance(values.get("Call_Duration"), str):
                written.values["Call_Duration_in_seconds"] = _seconds(values["Call_Duration"])
            if module == "Tasks" and values.get("Status") == self._vocab["task_status"]["done"]:
                written.values["Closed_Time"] = stamp
            self._written[module][zid] = written
            return {"id": str(zid), **written.values}
        written_record = self._written[module].get(target)
        if written_record is not None:
            written_record.values.update(values)
            written_record.values["Modified_Time"] = _iso(now)
            written_record.values["Modified_By"] = self._user_ref(0)
            written_record.modified = now
            return {"id": str(target), **written_record.values}
        entity = MODULE_ENTITIES[module]
        assert entity is not None
        key = target - _BASE - _SPACES[module] - 1
        self._overrides.setdefault(target, {}).update(values)
        self.clinic.touch(entity, key, now)
        record = self.clinic.records(entity)[key]
        return {
            "id": str(target),
            "Created_Time": _iso(record.created),
            "Modified_Time": _iso(record.modified),
            "Created_By": self._user_ref(record.owner),
        }

    def _find(self, module: str, raw_id: Any) -> int | None:
        """The numeric id of a live record of ``module`` with this id, if any."""
        try:
            zid = int(raw_id)
        except (TypeError, ValueError):
            return None
        if zid in self._written[module]:
            return zid
        entity = MODULE_ENTITIES[module]
        if entity is None:
            return None
        key = zid - _BASE - _SPACES[module] - 1
        records = self.clinic.records(entity)
        if 0 <= key < len(records) and records[key].deleted == LIVE:
            return zid
        return None

    def _lookup(self, module: str, name: str, value: Any) -> int | None:
        """The lowest id of a live record whose ``name`` field equals ``value`` (duplicate checks)."""
        cache_key = (module, name, self._version())
        index = self._index_cache.get(cache_key)
        if index is None:
            index = {}
            for zid, record in self._rows(module):
                if isinstance(record, Written):
                    current = record.values.get(name)
                else:
                    override = self._overrides.get(zid, {})
                    current = override[name] if name in override else self._value(module, name, record)
                if isinstance(current, str | int) and current not in index:
                    index[current] = zid
            self._index_cache[cache_key] = index
        return index.get(value) if isinstance(value, str | int) else None

    def _display(self, module: str, zid: int) -> str | None:
        name = _DISPLAY_FIELD.get(module, "Subject")
        written = self._written[module].get(zid)
        if written is not None:
            return written.values.get(name)
        entity = MODULE_ENTITIES[module]
        assert entity is not None
        record = self.clinic.records(entity)[zid - _BASE - _SPACES[module] - 1]
        return self._value(module, name, record)

    def _user_key(self, raw_id: Any) -> int | None:
        try:
            key = int(raw_id) - _BASE - _SPACES["users"] - 1
        except (TypeError, ValueError):
            return None
        return key if 0 <= key < len(self.clinic.agents) else None


class _RecordError(Exception):
    """One record of a write is rejected; becomes that record's error item."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(code)
        self.code, self.message, self.details = code, message, details


def _is_date(value: Any) -> bool:
    try:
        date.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return True


_VALID: dict[str, Callable[[Any], bool]] = {
    "text": lambda v: isinstance(v, str) and len(v) <= 255,
    "phone": lambda v: isinstance(v, str) and len(v) <= 30,
    "textarea": lambda v: isinstance(v, str) and len(v) <= 32_000,
    "email": lambda v: isinstance(v, str) and "@" in v,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "date": _is_date,
}


def _failure(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"code": code, "details": details, "message": message, "status": "error"}


def _lookup_id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _parse_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _seconds(duration: str) -> int | None:
    try:
        parts = [int(p) for p in duration.split(":")]
    except ValueError:
        return None
    total = 0
    for part in parts:
        total = total * 60 + part
    return total


def _paging(query: Mapping[str, str]) -> tuple[int, int, Response | None]:
    try:
        per_page = int(query.get("per_page", "200"))
        page = int(query.get("page", "1"))
    except ValueError:
        return 0, 0, _error(400, "INVALID_DATA", "invalid data", param_name="page")
    if not 1 <= per_page <= 200:
        return 0, 0, _error(400, "INVALID_DATA", "invalid data", param_name="per_page", maximum_length=200)
    if page < 1:
        return 0, 0, _error(400, "INVALID_DATA", "invalid data", param_name="page")
    return per_page, page, None


def _since(header: str | None) -> tuple[float | None, Response | None]:
    if header is None:
        return None, None
    parsed = _parse_datetime(header.strip())
    if parsed is None:
        return None, _error(400, "INVALID_DATA", "invalid data", header_name="If-Modified-Since")
    return parsed.timestamp(), None


def create_app(clinic: Clinic, **options: Any) -> ZohoApp:
    """The factory the CLI and tests use (options: picklist_language, oauth, token_clock …)."""
    return ZohoApp(clinic, **options)


def all_fields(module: str) -> list[str]:
    """Every field this sandbox renders for ``module`` (handy for tests and demos)."""
    names: Iterable[str] = (
        *_COMMON,
        "Created_Time",
        "Modified_Time",
        "Created_By",
        "Modified_By",
        *_SCHEMAS[module],
    )
    return list(dict.fromkeys(names))
