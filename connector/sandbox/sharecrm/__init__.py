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

from connector.sandbox.sharecrm.app import ShareCrmApp, ShareCrmCredentials, create_app, envelope
from connector.sandbox.sharecrm.query import WRITABLE
from connector.sandbox.sharecrm.records import object_id, open_user_id, sandbox_mapping

__all__ = [
    "WRITABLE",
    "ShareCrmApp",
    "ShareCrmCredentials",
    "create_app",
    "envelope",
    "object_id",
    "open_user_id",
    "sandbox_mapping",
]
