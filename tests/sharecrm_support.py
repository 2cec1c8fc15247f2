"""Builders shared by the ShareCRM adapter tests: options, an adapter on a fake clock, and a fake
object endpoint that pages exactly as sharecrm.md §3.2/§3.3 documents (behind ``responses``)."""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
import responses
from fake_time import FakeTime

from adapters.sharecrm import ShareCrmAdapter, ShareCrmOptions
from connector.adapter import AdapterContext
from connector.config.models import SourceConfig
from connector.mapping import load_mapping
from connector.store.tokens import MemoryTokenCache, TokenCache

TZ = ZoneInfo("Asia/Shanghai")
BASE = "https://open.fxiaoke.com"
TOKEN_URL = f"{BASE}/cgi/corpAccessToken/get/V2"
QUERY_URL = f"{BASE}/cgi/crm/v2/data/query"
CUSTOM_QUERY_URL = f"{BASE}/cgi/crm/custom/v2/data/query"
APP_SECRET = "app-secret-5e8a1b2c3d4f6a7b"
PERMANENT_CODE = "2C824786794DCB9E6AA7CBD95DC27C5F"
TOKEN = "9F1C2B7E0A4D4C1E8B6A2F3D5C7E9A10"
CORP = "FSCID_5E8A1B2C3D4F"
OPERATOR = "FSUID_0123456789ABCDEF0123456789ABCDEF"
SECRETS = (APP_SECRET, PERMANENT_CODE, TOKEN)
MAPPINGS = load_mapping("sharecrm", TZ).entities
START = datetime(2026, 10, 8, 1, 0, tzinfo=UTC)


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def options(**overrides: Any) -> ShareCrmOptions:
    values: dict[str, Any] = {
        "app_id": "FSAID_131abc",
        "app_secret": APP_SECRET,
        "permanent_code": PERMANENT_CODE,
        "operator_open_user_id": OPERATOR,
        **overrides,
    }
    if "operator_mobile" in overrides and "operator_open_user_id" not in overrides:
        values.pop("operator_open_user_id")
    return ShareCrmOptions.model_validate(values)


def make_adapter(
    time: FakeTime,
    *,
    tokens: TokenCache | None = None,
    mappings: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> ShareCrmAdapter:
    source = SourceConfig(name="clinic_fx", kind="sharecrm", options=options(**overrides))
    context = AdapterContext(
        name="clinic_fx",
        config=source,
        base_dir=Path("."),
        mappings=MAPPINGS if mappings is None else mappings,
        tokens=tokens if tokens is not None else MemoryTokenCache(),
        clock=time.clock,
        sleep=time.sleep,
    )
    return ShareCrmAdapter(context)


def envelope(**fields: Any) -> dict[str, Any]:
    return {
        "traceId": "E-O.fake.1000-1",
        "errorCode": 0,
        "errorMessage": "OK",
        "errorDescription": "success",
        **fields,
    }


def failure(code: int, message: str = "failed", trace: str = "E-O.fake.1000-err") -> dict[str, Any]:
    return {"traceId": trace, "errorCode": code, "errorMessage": message, "errorDescription": "失败"}


def add_token(token: str = TOKEN, expires_in: int = 7200) -> responses.BaseResponse:
    return responses.post(
        TOKEN_URL,
        json={
            "errorCode": 0,
            "errorMessage": "success",
            "corpAccessToken": token,
            "corpId": CORP,
            "expiresIn": expires_in,
        },
    )


def calls_to(url: str) -> list[Any]:
    return [call for call in responses.calls if call.request.url.split("?")[0] == url]


def body_of(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


def rows(count: int, *, start: int = 0, modified: datetime = START, step_s: int = 1) -> list[dict[str, Any]]:
    """``count`` records with ascending 24-hex ``_id`` s, modified ``step_s`` apart from ``modified``."""
    return [
        {
            "_id": f"65f0a1b2c3d4{n:012x}",
            "name": f"记录{n}",
            "last_modified_time": ms(modified + timedelta(seconds=n * step_s)),
            "life_status": "normal",
        }
        for n in range(start, start + count)
    ]


class FakeObject:
    """One object behind ``data/query``: filters GTE/GT/EQ/IN, ``_id`` ordering, limit ≤ 100, the
    10,000 offset cap (10013), ``fieldProjection``; records every request body in ``bodies``."""

    def __init__(
        self, records: list[dict[str, Any]], *, api_name: str = "CasesObj", cap: int | None = None
    ) -> None:
        self.records = records
        self.api_name = api_name
        self.cap = cap  # a gateway that silently caps the page size and echoes the cap
        self.bodies: list[dict[str, Any]] = []
        self.before: Callable[[int], dict[str, Any] | None] | None = None  # inject a reply per call

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body or b"{}")
        self.bodies.append(body)
        if self.before is not None:
            injected = self.before(len(self.bodies))
            if injected is not None:
                return 200, {}, json.dumps(injected)
        data = body["data"]
        if data["dataObjectApiName"] != self.api_name:
            return 200, {}, json.dumps(failure(15002, "object not found"))
        info = data["search_query_info"]
        limit, offset = info["limit"], info["offset"]
        if limit > 100:
            return 200, {}, json.dumps(failure(15002, "limit不能超过100"))
        if offset > 10_000:
            return 200, {}, json.dumps(failure(10013, "offset out of range 10000"))
        size = min(limit, self.cap or limit)
        page = self._select(info.get("filters", []), info.get("orders", []), offset + size)[offset:]
        projection = info.get("fieldProjection") or []
        if projection:
            page = [{k: v for k, v in r.items() if k in projection or k == "_id"} for r in page]
        reply = envelope(data={"dataList": page, "offset": offset, "limit": size, "total": 0})
        return 200, {}, json.dumps(reply, ensure_ascii=False)

    def _select(
        self, filters: list[dict[str, Any]], orders: list[dict[str, Any]], wanted: int
    ) -> list[dict[str, Any]]:
        """The first ``wanted`` matching rows; ``_id GT`` under ``_id`` order starts by bisection."""
        if orders != [{"fieldName": "_id", "isAsc": True}]:
            found = [r for r in self.records if all(_matches(r, f) for f in filters)]
            for order in reversed(orders):
                found.sort(key=lambda r, o=order: r.get(o["fieldName"]), reverse=not order["isAsc"])
            return found[:wanted]
        ordered = sorted(self.records, key=lambda r: r["_id"])
        start = 0
        rest = []
        for spec in filters:
            if spec["field_name"] == "_id" and spec["operator"] == "GT":
                start = bisect.bisect_right([r["_id"] for r in ordered], spec["field_values"][0])
            else:
                rest.append(spec)
        out = []
        for record in ordered[start:]:
            if all(_matches(record, f) for f in rest):
                out.append(record)
                if len(out) == wanted:
                    break
        return out


def _matches(record: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    value = record.get(spec["field_name"])
    wanted = spec["field_values"]
    operator = spec["operator"]
    if operator == "IN":
        return value in wanted or (isinstance(value, list) and any(v in wanted for v in value))
    if value is None:
        return False
    if isinstance(value, list):
        return operator == "EQ" and wanted[0] in value
    first = type(value)(wanted[0])
    if operator == "EQ":
        return value == first
    if operator == "GT":
        return value > first
    if operator == "GTE":
        return value >= first
    raise ValueError(f"the fake object does not know operator {operator}")


def serve(fake: FakeObject, url: str = QUERY_URL) -> FakeObject:
    responses.add_callback(responses.POST, url, callback=fake)
    return fake


def as_utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
