"""Builders shared by the Zoho adapter tests: options, an adapter on a fake clock, token replies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import responses
from fake_time import FakeTime

from adapters.zoho import ZohoAdapter, ZohoOptions
from connector.adapter import AdapterContext
from connector.config.models import SourceConfig
from connector.mapping import load_mapping
from connector.store.tokens import MemoryTokenCache, TokenCache

TZ = ZoneInfo("Asia/Shanghai")
ACCOUNTS = "https://accounts.zoho.eu"
TOKEN_URL = f"{ACCOUNTS}/oauth/v2/token"
API = "https://www.zohoapis.eu"
CRM = f"{API}/crm/v8"
CLIENT_SECRET = "zoho-client-secret-9f8e7d6c5b"
REFRESH_TOKEN = "1000.refresh-3f2c0a1b9d8e7f6a.5b4c3d2e1f0a"
ACCESS = "1000.access-7d6e5f4a3b2c1d0e.9f8a7b6c5d4e"
SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, ACCESS)
MAPPINGS = load_mapping("zoho", TZ).entities


def options(**overrides: Any) -> ZohoOptions:
    values: dict[str, Any] = {
        "client_id": "1000.CLIENTID",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "data_center": "eu",
        **overrides,
    }
    return ZohoOptions.model_validate(values)


def make_adapter(
    time: FakeTime,
    *,
    tokens: TokenCache | None = None,
    mappings: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> ZohoAdapter:
    source = SourceConfig(name="clinic_zoho", kind="zoho", options=options(**overrides))
    context = AdapterContext(
        name="clinic_zoho",
        config=source,
        base_dir=Path("."),
        mappings=MAPPINGS if mappings is None else mappings,
        tokens=tokens if tokens is not None else MemoryTokenCache(),
        clock=time.clock,
        sleep=time.sleep,
    )
    return ZohoAdapter(context)


def token_reply(access: str = ACCESS, **fields: Any) -> dict[str, Any]:
    return {"access_token": access, "api_domain": API, "token_type": "Bearer", "expires_in": 3600, **fields}


def add_token(access: str = ACCESS, **fields: Any) -> responses.BaseResponse:
    return responses.post(TOKEN_URL, json=token_reply(access, **fields))


def token_calls() -> list[Any]:
    return [call for call in responses.calls if call.request.url.startswith(TOKEN_URL)]


def zoho_time(at: datetime) -> str:
    """How Zoho writes a time: ISO-8601 in the user's offset (here India, as in zoho.md §9)."""
    return at.astimezone(ZoneInfo("Asia/Kolkata")).isoformat()


def records(start: int, count: int, base: datetime | None = None) -> list[dict[str, Any]]:
    """``count`` Cases-like records, one second apart from ``base`` in id order."""
    base = base or datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "id": f"57257670000{n:08d}",
            "Modified_Time": zoho_time(base + timedelta(seconds=n)),
            "Subject": f"s{n}",
        }
        for n in range(start, start + count)
    ]
