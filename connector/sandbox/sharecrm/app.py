"""The ShareCRM sandbox app: auth, limits, directory, object queries and writes over the clinic.

See the package docstring for what it answers; :mod:`.records` renders the clinic, :mod:`.query`
says what filters and write values mean.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from connector.sandbox.clinic import CLINIC_TZ, HARD_DELETED, SOFT_DELETED, Agent, Clinic, TruthRow
from connector.sandbox.server import Request, Response, Route, json_response, route
from connector.sandbox.sharecrm.query import (
    ID_ORDER,
    OPERATORS,
    WRITABLE,
    holds,
    id_cursor,
    since_ms,
    sort_key,
    type_problem,
)
from connector.sandbox.sharecrm.records import (
    Renderer,
    employee,
    epoch_ms,
    malform,
    object_id,
    open_user_id,
    shown_modified,
)

FSUID = re.compile(r"^FSUID_[0-9A-F]{32}$")
SERVER_ERRORS = ("-1", "502", "50009", "-2")


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
        self._renderer = Renderer(self.clinic)
        self.written: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in WRITABLE}
        self._write_seq = itertools.count(1)
        self._server_errors = itertools.cycle(SERVER_ERRORS)
        self._quota_day: date | None = None
        self.quota_used = 0
        self.rejected: Counter[int] = Counter()  # errorCodes answered by the app itself (not faults)
        self.max_offset = 0
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
            "rejected": {str(code): n for code, n in sorted(self.rejected.items())},
            "max_offset": self.max_offset,
        }

    def truth(self, entity: str) -> dict[str, TruthRow]:
        """``_id`` (``openUserId`` for agents) → the record as a faithful sync sees it: an invalidated
        record's modification time is its invalidation."""
        if entity == "agents":
            return {
                open_user_id(a.key): TruthRow(a.key, a.created, a.modified, None, None)
                for a in self.clinic.agents
            }
        records = self.clinic.records(entity)
        return {
            object_id(entity, row.key, row.created): row._replace(modified=shown_modified(records[row.key]))
            for row in self.clinic.truth(entity)
        }

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

    def _reject(self, code: int, message: str, **fields: Any) -> Response:
        self.rejected[code] += 1
        return envelope(code, message, **fields)

    def _over_limit(self, request: Request, calls: int, window: float) -> bool:
        times = request.counters.timestamps(f"{request.method} {request.path}")
        return bool(times) and len(times) - bisect.bisect_left(times, times[-1] - window) > calls

    def _gate(self, request: Request, *, crm: bool) -> tuple[dict[str, Any], Agent | None, Response | None]:
        """The body, the operator (CRM calls) and an error reply, in the gateway's order of checks."""
        try:
            body = request.json()
        except ValueError:
            return {}, None, self._reject(15002, "请求体不是合法的JSON")
        if not isinstance(body, dict):
            return {}, None, self._reject(15002, "请求体不是合法的JSON")
        if self._over_limit(request, self.rate_limit_calls, self.rate_limit_window_s):
            return body, None, self._reject(30004, "接口调用频率超过限制")
        issued = self._tokens.get(str(body.get("corpAccessToken")))
        if (
            issued is None
            or issued[1] <= self.token_clock()
            or body.get("corpId") != self.credentials_.corp_id
        ):
            return body, None, self._reject(20016, "the cropId,cropAccessToken or authorization is error")
        operator = None
        if crm:
            user = body.get("currentOpenUserId")
            if not isinstance(user, str) or not FSUID.match(user):
                return body, None, self._reject(11008, "currentOpenUserId 不能为空或不合法")
            operator = self._users.get(user)
            if operator is None:
                return body, None, self._reject(20012, "openUserId不存在")
        day = self.clinic.now.astimezone(CLINIC_TZ).date()
        if day != self._quota_day:
            self._quota_day, self.quota_used = day, 0
        self.quota_used += 1
        if self.daily_quota is not None and self.quota_used > self.daily_quota:
            return body, None, self._reject(30002, "企业今日API调用次数已用完")
        return body, operator, None

    # ---- auth and directory -------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = {}
        c = self.credentials_
        if not isinstance(body, dict) or body.get("appId") != c.app_id:
            return self._reject(20006, "appId不存在或者appSecret错误")
        if body.get("appSecret") != c.app_secret:
            return self._reject(10006, "the parameter appSecret is missing or illegal")
        if body.get("permanentCode") != c.permanent_code:
            return self._reject(20015, "permanentCode错误")
        if self._over_limit(request, 10, 60.0):
            return self._reject(30004, "获取token过于频繁")
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
        found = [
            employee(a, self._departments[a.department])
            for a in self.clinic.agents
            if a.mobile == body.get("mobile")
        ]
        return envelope(empList=found)

    def _user_list(self, request: Request) -> Response:
        body, _, error = self._gate(request, crm=False)
        if error:
            return error
        if body.get("departmentId") != 999999 and not body.get("fetchChild"):
            wanted = body.get("departmentId")
            return envelope(
                userList=[
                    employee(a, self._departments[a.department])
                    for a in self.clinic.agents
                    if self._departments[a.department] == wanted
                ]
            )
        return envelope(userList=[employee(a, self._departments[a.department]) for a in self.clinic.agents])

    def _department_list(self, request: Request) -> Response:
        _, _, error = self._gate(request, crm=False)
        if error:
            return error
        departments = [{"id": 999999, "name": "全公司", "parentId": 0, "order": 0}]
        departments += [
            {"id": i, "name": n, "parentId": 999999, "order": i} for n, i in self._departments.items()
        ]
        return envelope(departments=departments)

    def _malform(self, api: str, row: dict[str, Any], request: Request) -> dict[str, Any]:
        """The row as sent while the ``malformed`` fault is on: broken on the way out, never in filters."""
        entity = self.objects.get(api)
        kind = request.faults.malformation(row["_id"]) if entity and "_id" in row else None
        return malform(entity, row, kind) if entity and kind else row

    # ---- query semantics ---------------------------------------------------------------------

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

    # ---- queries ------------------------------------------------------------------------------

    def _object(self, request: Request, body: Mapping[str, Any]) -> tuple[str, Response | None]:
        """The object a call is about: ``data.dataObjectApiName`` (query, get) or inside
        ``data.object_data`` (create, update)."""
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        inner = data.get("object_data") if isinstance(data.get("object_data"), dict) else {}
        api = str(data.get("dataObjectApiName") or inner.get("dataObjectApiName") or "")
        known = api in self.objects or api in WRITABLE
        if not known or api.endswith("__c") != bool(request.match["custom"]):
            return api, self._reject(15002, f"对象 {api or '(空)'} 不存在")
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
            return self._reject(15002, "limit 取值范围为1-100")
        if not isinstance(offset, int) or offset < 0 or offset % limit:
            return self._reject(15002, "offset 必须是limit的整数倍")
        self.max_offset = max(self.max_offset, offset)
        if offset > 10_000:
            return self._reject(10013, "offset out of range 10000", errorDescription="offset 不能超过10000")
        filters = info.get("filters") or []
        if any(not isinstance(f, dict) or f.get("operator") not in OPERATORS for f in filters):
            return self._reject(15002, "filters 中有不支持的操作符")
        orders = info.get("orders") or ID_ORDER
        projection = set(info.get("fieldProjection") or ())
        ids_only = projection == {"_id"} and {f.get("field_name") for f in filters} <= {"_id"}
        matches = self._matches(api, operator, filters, orders, offset + limit, ids_only=ids_only)
        page = [self._malform(api, row, request) for row in matches[offset : offset + limit]]
        if projection:
            page = [{k: v for k, v in r.items() if k in projection or k == "_id"} for r in page]
        total = (
            len(self._matches(api, operator, filters, orders, None))
            if data.get("find_explicit_total_num", True)
            else 0
        )
        return envelope(data={"dataList": page, "offset": offset, "limit": limit, "total": total})

    def _matches(
        self,
        api: str,
        operator: Agent | None,
        filters: list[dict[str, Any]],
        orders: list[dict[str, Any]],
        wanted: int | None,
        *,
        ids_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Matching rows in order; under ``_id`` ascending order only the first ``wanted`` are built."""
        by_id = orders == ID_ORDER
        found = []
        for row in self._candidates(api, operator, filters if by_id else [], ids_only):
            if all(holds(row, f) for f in filters):
                found.append(row)
                if by_id and wanted is not None and len(found) >= wanted:
                    break
        if not by_id:
            for order in reversed(orders):
                found.sort(
                    key=lambda r, o=order: sort_key(r.get(o.get("fieldName"))),
                    reverse=not order.get("isAsc", True),
                )
        return found

    def _candidates(
        self,
        api: str,
        operator: Agent | None,
        filters: list[dict[str, Any]],
        ids_only: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Rows in ``_id`` order, starting after an ``_id GT``/``GTE`` filter's value (bisection);
        ``ids_only`` (an id scan) skips rendering the rest of each record."""
        after = id_cursor(filters)
        if api in WRITABLE:
            rows = [self.written[api][i] for i in sorted(self.written[api])]
            yield from (r for r in rows if after is None or holds(r, after))
            return
        entity = self.objects[api]
        ids, keys = self._index_of(entity)
        start = 0
        if after is not None:
            value = str(after["field_values"][0])
            start = (bisect.bisect_right if after["operator"] == "GT" else bisect.bisect_left)(ids, value)
        records = self.clinic.records(entity)
        since = since_ms(filters)
        for index in range(start, len(ids)):  # no slicing: 50,000 ids copied per page would dominate
            record_id, record = ids[index], records[keys[index]]
            if not self._visible(record, operator):
                continue
            if since is not None and epoch_ms(shown_modified(record)) < since:  # type: ignore[operator]
                continue  # cheap pre-check of last_modified_time before rendering
            yield {"_id": record_id} if ids_only else self._renderer.render(entity, record)

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
            visible = record is not None and self._visible(record, operator)
            found = self._malform(api, self._renderer.render(entity, record), request) if visible else None
        return envelope(data=found) if found else self._reject(15002, "数据不存在")

    # ---- writes -------------------------------------------------------------------------------

    def _write_target(self, request: Request) -> tuple[str, dict[str, Any], Agent | None, Response | None]:
        body, operator, error = self._gate(request, crm=True)
        if error:
            return "", {}, None, error
        api, error = self._object(request, body)
        values = (body.get("data") or {}).get("object_data")
        if error is None and api not in WRITABLE:
            error = self._reject(15002, f"沙箱不支持写入对象 {api}")
        if error is None and (not isinstance(values, dict) or values.get("dataObjectApiName") != api):
            error = self._reject(15002, "object_data.dataObjectApiName 缺失或不一致")
        if error is None:
            problem = type_problem(WRITABLE[api], values)
            error = self._reject(15002, problem) if problem else None
        if error is None and body.get("triggerWorkFlow", True) is not False:
            request.counters.event("workflow_triggered")
        return api, values if isinstance(values, dict) else {}, operator, error

    def _create(self, request: Request) -> Response:
        api, values, operator, error = self._write_target(request)
        if error:
            return error
        assert operator is not None
        now = epoch_ms(self.clinic.now)
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
            return self._reject(15002, "数据不存在或已作废")
        record.update({k: v for k, v in values.items() if k != "_id"})
        record["last_modified_time"] = epoch_ms(self.clinic.now)
        record["last_modified_by"] = [open_user_id(operator.key)]
        return envelope()


def create_app(clinic: Clinic, **options: Any) -> ShareCrmApp:
    """The ShareCRM emulation; ``options`` are :class:`ShareCrmApp` fields (``invalid_visible``,
    ``daily_quota``, ``rate_limit_calls``, ``rate_limit_window_s``, ``call_object`` …)."""
    return ShareCrmApp(clinic, **options)
