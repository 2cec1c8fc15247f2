"""Zoho's replies, classified in one place (zoho.md §1.3, §5.3).

* 2xx with JSON, 204 and 304 are fine; 207, and 400/412 carrying a per-record ``data[]``, are write
  results the push code reads record by record.
* 429, or the codes ``TOO_MANY_REQUESTS`` / ``RATE_LIMIT_EXCEEDED`` under any status: rate limited.
  Zoho does not say whether credits or concurrency ran out, so the transport backs off either way.
* 5xx, and a 2xx whose body is not JSON (a truncated reply): retry.
* 401 ``OAUTH_SCOPE_MISMATCH``: fatal, re-consent needed. Any other 401 (``INVALID_TOKEN``,
  ``AUTHENTICATION_FAILURE``): refresh the token once and retry once.
* Everything else (400, 403, 404, …): fatal, with Zoho's ``code``, ``message`` and ``details``.
"""

from __future__ import annotations

from connector.http import OK, Decision, Reply, Verdict

RATE_LIMIT_CODES = frozenset({"TOO_MANY_REQUESTS", "RATE_LIMIT_EXCEEDED"})

SCOPES = (
    "ZohoCRM.modules.ALL (or ZohoCRM.modules.{contacts,cases,tasks,calls}.READ plus "
    "ZohoCRM.modules.custom.READ), ZohoCRM.users.READ, ZohoCRM.settings.fields.READ, and "
    "ZohoCRM.modules.custom.ALL to write scorecards"
)
SCOPE_HINT = f"the refresh token lacks a scope; generate a new one with the scopes {SCOPES}"
TOKEN_HINT = (
    "a token from another data centre is rejected: check `data_center` (or `accounts_url`/`api_domain`) "
    "against the org's Zoho domain"
)


class ZohoSetupError(ValueError):
    """The source cannot work as configured (raised when the adapter is built)."""


def classify(reply: Reply) -> Verdict:
    """Decide what to do with a Zoho API reply."""
    status, body = reply.status, reply.body
    if status in (204, 304):
        return OK
    envelope = body if isinstance(body, dict) else {}
    code = envelope.get("code")
    message, details = envelope.get("message"), envelope.get("details")
    if 200 <= status < 300:
        if isinstance(body, dict):
            return OK
        return Verdict(Decision.RETRY, "MALFORMED_RESPONSE", "the reply body is not a JSON object")
    if status == 429 or code in RATE_LIMIT_CODES:
        return Verdict(Decision.RATE_LIMITED, code or "TOO_MANY_REQUESTS", message, details)
    if status == 401:
        if code == "OAUTH_SCOPE_MISMATCH":
            return Verdict(Decision.FATAL, code, message, details, hint=SCOPE_HINT, auth=True)
        return Verdict(Decision.REFRESH_THEN_RETRY, code, message, details, hint=TOKEN_HINT, auth=True)
    if status >= 500:
        return Verdict(Decision.RETRY, code, message, details)
    if status in (400, 412) and isinstance(envelope.get("data"), list):
        return OK  # every record of a write failed: per-record results, not a request failure
    hint = None
    if code == "NO_PERMISSION":
        hint = "give the connector's Zoho user a profile with the permissions listed in details"
    return Verdict(Decision.FATAL, code, message, details, hint=hint)
