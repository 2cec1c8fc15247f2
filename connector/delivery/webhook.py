"""One POST of an alert to a webhook, with the idempotency key in the headers and the body.

A POST is tried once per run: the retry policy lives in ``alert_deliveries`` (back-off across runs),
not in a loop here, so a receiver that is down costs one request per run and never blocks the job.

Robot webhooks answer HTTP 200 even when they refuse a message; their ``errcode`` decides (0 = ok).
Robot URLs carry their key (WeCom ``key=…``, DingTalk ``access_token=…``), so no message built
here ever contains the URL: errors name the answer, never where it came from.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

import requests

from connector.delivery.settings import WebhookSettings
from connector.http import USER_AGENT


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None = None


def dingtalk_signed(url: str, secret: str, now: datetime) -> str:
    """DingTalk's 加签: ``timestamp`` (ms) and ``sign`` = base64(HMAC-SHA256(secret, "ts\\nsecret"))."""
    timestamp = str(int(now.timestamp() * 1000))
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    sign = quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={sign}"


def post_alert(
    session: requests.Session,
    settings: WebhookSettings,
    payload: Mapping[str, Any],
    *,
    key: str,
    fingerprint: str,
    now: datetime,
) -> SendResult:
    """POST ``payload``; ok only on a 2xx answer (and ``errcode`` 0 from a robot)."""
    url = settings.url.get_secret_value()
    if settings.secret is not None:
        url = dingtalk_signed(url, settings.secret.get_secret_value(), now)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": key,
        "X-Alert-Fingerprint": fingerprint,
    }
    body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
    try:
        response = session.post(url, data=body, headers=headers, timeout=settings.timeout_s)
    except requests.RequestException as exc:  # the text may quote the URL: give the kind only
        return SendResult(False, f"no answer ({type(exc).__name__})")
    text = _scrub(response.text[:300], url)
    if not 200 <= response.status_code < 300:
        return SendResult(False, f"HTTP {response.status_code}: {text}".strip())
    if settings.format == "generic":
        return SendResult(True)
    try:
        answer = response.json()
    except ValueError:
        return SendResult(False, f"HTTP {response.status_code}, not a robot answer: {text}")
    code = answer.get("errcode") if isinstance(answer, dict) else None
    if code not in (0, "0"):
        message = answer.get("errmsg") if isinstance(answer, dict) else None
        return SendResult(False, _scrub(f"errcode {code}: {message}", url))
    return SendResult(True)


def _scrub(text: str, url: str) -> str:
    """``text`` without any query value of ``url`` (a robot key must not reach the logs)."""
    for _, value in parse_qsl(urlsplit(url).query):
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text
