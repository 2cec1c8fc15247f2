"""ShareCRM's replies, classified by ``errorCode`` alone (sharecrm.md §5.1, §5.3).

ShareCRM answers HTTP 200 for nearly every failure and its ``errorMessage`` text changes between
releases, so decisions rest on the code only; the message is kept for people, and every non-zero
reply is logged with its ``traceId`` (what ShareCRM support asks for).

* 0: fine.
* 20016 (token missing/expired) and the other token codes (10014, 11014, 11015, 20005): renew the
  corp token once and retry once; the transport makes a second rejection an auth error.
* 30004 (per-endpoint frequency) and 14001 (call limit): back off; the client limiter should make
  them rare, but other integrations share the tenant's limit.
* -1, -2, 50009 (busy, system error, timeout), HTTP 5xx and non-JSON 200s: retry with back-off.
* 30002: the tenant's daily quota is spent; the client turns it into :class:`QuotaExhausted`.
* 10013 (offset beyond 10,000): the pull never pages by offset, so this is a connector bug.
* Configuration codes (wrong app credentials, operator, no quota bought, missing permission): fatal,
  with a Chinese and English hint telling the admin what to fix.
* Anything else non-zero: fatal for that request, with ShareCRM's code and message.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connector.http import OK, Decision, Reply, TransportError, Verdict
from connector.i18n import tr

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")

TOKEN_CODES = frozenset({20016, 10014, 11014, 11015, 20005})
RATE_CODES = frozenset({30004, 14001})
RETRY_CODES = frozenset({-1, -2, 50009})
QUOTA_CODE = 30002
OFFSET_CODE = 10013

MESSAGES = {
    "credentials": {
        "zh": "app_id 或 app_secret 不正确：请在纷享销客管理后台 → 应用管理 → 自建应用（开发者模式）中核对",
        "en": "app_id or app_secret is wrong: compare them with the self-built app (developer mode) in "
        "the ShareCRM admin console",
    },
    "permanent_code": {
        "zh": "permanent_code（永久授权码）不正确：请在自建应用的开发者模式页面重新复制",
        "en": "permanent_code is wrong: copy it again from the self-built app's developer-mode page",
    },
    "operator": {
        "zh": "操作人（operator_open_user_id / operator_mobile）不存在或无效：请填写一位在职的CRM管理员",
        "en": "the operator (operator_open_user_id / operator_mobile) is unknown or invalid: name an "
        "active employee who is a CRM administrator",
    },
    "no_quota": {
        "zh": "企业未购买开放平台API资源包（无调用额度）：请在管理后台购买OpenAPI资源包",
        "en": "the tenant has bought no Open API resource pack (no call quota): buy one in the admin console",
    },
    "permission": {
        "zh": "应用或操作人没有权限：请启用该自建应用、开通所需API权限、检查IP白名单，"
        "并确认操作人是CRM管理员",
        "en": "the app or the operator lacks a permission: enable the self-built app, grant its API "
        "permissions, check the IP whitelist, and make the operator a CRM administrator",
    },
    "corp": {
        "zh": "企业身份（corpId）无效：请检查 base_url 是否为本企业所在的云（如 open.fxiaoke.com）",
        "en": "the corpId was not accepted: check that base_url is the tenant's cloud "
        "(e.g. open.fxiaoke.com)",
    },
    "bad_request": {
        "zh": "请求参数无效：请用 object/describe 核对映射文件中的对象和字段API名称",
        "en": "invalid request parameters: check the object and field API names in the mapping "
        "against object/describe",
    },
    "missing_target": {
        "zh": "部门或员工不存在：请检查写入记录中的员工/部门ID",
        "en": "a department or employee does not exist: check the employee/department ids being written",
    },
    "offset": {
        "zh": "分页偏移量超过10000（errorCode 10013）：连接器从不按偏移量翻页，这是程序缺陷，请报告",
        "en": "paging offset beyond 10,000 (errorCode 10013): the connector never pages by offset, so "
        "this is a bug; please report it",
    },
    "wrong_host": {
        "zh": "该地址不是纷享销客开放平台API：请把 base_url 设为 https://open.fxiaoke.com "
        "或本企业所在云的地址",
        "en": "this address is not the ShareCRM open API: set base_url to https://open.fxiaoke.com or "
        "the tenant's cloud",
    },
    "quota": {
        "zh": "纷享销客今日API调用额度已用完（errorCode 30002），将于北京时间 00:00（{reset}）重置；"
        "同步进度已保存，下次运行从中断处继续",
        "en": "ShareCRM's daily API quota is used up (errorCode 30002); it resets at 00:00 Asia/Shanghai "
        "({reset}); progress is saved and the next run continues where this one stopped",
    },
    "no_operator": {
        "zh": "通过手机号 {mobile} 找不到员工：请检查 operator_mobile，或改填 operator_open_user_id",
        "en": "no employee has the mobile number {mobile}: check operator_mobile, or set "
        "operator_open_user_id instead",
    },
}

#: errorCode → key of the hint in :data:`MESSAGES`; the ``auth`` ones are credential problems.
CONFIG_CODES: dict[int, str] = {
    10006: "credentials",
    20006: "credentials",
    10002: "credentials",
    11002: "credentials",
    20015: "permanent_code",
    11008: "operator",
    20012: "operator",
    30003: "no_quota",
    15003: "permission",
    20014: "permission",
    20020: "permission",
    20021: "permission",
    20022: "permission",
    20023: "permission",
    20017: "corp",
    15002: "bad_request",
    32000: "bad_request",
    30007: "missing_target",
    30027: "missing_target",
    OFFSET_CODE: "offset",
}
AUTH_CODES = frozenset({10006, 20006, 10002, 11002, 20015, 11008, 20012, 20017})
#: The 2001x/2002x family not listed above is about app authorisation or permissions.
PERMISSION_RANGE = range(20010, 20030)


def both(key: str, **values: object) -> str:
    """A message in Chinese and English: the admin may read either, and logs are shared."""
    return f"{tr(MESSAGES, key, 'zh', **values)} / {tr(MESSAGES, key, 'en', **values)}"


class ShareCrmSetupError(ValueError):
    """The source cannot work as configured (bad options, operator not found)."""


class QuotaExhausted(TransportError):
    """The tenant's daily quota (30002) is spent: nothing more can be read before ``resets_at``.

    Not a :class:`~connector.http.FatalApiError`: nothing is wrong with the request or the setup,
    the run just has to end here and the next one resumes from the stored cursor.
    """

    code = str(QUOTA_CODE)

    def __init__(self, resets_at: datetime, trace_id: str | None) -> None:
        reset = resets_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M %Z")
        super().__init__(both("quota", reset=reset))
        self.resets_at = resets_at
        self.trace_id = trace_id


def next_reset(now: datetime) -> datetime:
    """The next 00:00 in Asia/Shanghai after ``now`` (when ShareCRM's daily quota resets), in UTC."""
    local = now.astimezone(SHANGHAI)
    return datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=SHANGHAI).astimezone(UTC)


def error_code(body: Any) -> int | None:
    """The envelope's ``errorCode`` as an int (ShareCRM sends a number; a string is tolerated)."""
    if not isinstance(body, dict) or "errorCode" not in body:
        return None
    try:
        return int(body["errorCode"])
    except (TypeError, ValueError):
        return None


def classify(reply: Reply) -> Verdict:
    """Decide what to do with a ShareCRM reply."""
    status, body = reply.status, reply.body
    if status >= 500:
        return Verdict(Decision.RETRY, f"HTTP_{status}", "server error")
    if status == 429:
        return Verdict(Decision.RATE_LIMITED, "HTTP_429", "too many requests")
    if 300 <= status < 400 or status == 404:
        return Verdict(Decision.FATAL, f"HTTP_{status}", "not the API", hint=both("wrong_host"))
    if status != 200:
        return Verdict(Decision.FATAL, f"HTTP_{status}", str(body)[:200] if body else None)
    code = error_code(body)
    if code is None:
        return Verdict(Decision.RETRY, "MALFORMED_RESPONSE", "the reply is not a ShareCRM JSON envelope")
    if code == 0:
        return OK
    trace_id = body.get("traceId")
    message = body.get("errorMessage") or body.get("errorDescription")
    log.warning("ShareCRM errorCode %s (traceId %s): %s", code, trace_id, message)
    details = {"traceId": trace_id} if trace_id else None
    text = str(code)
    if code in TOKEN_CODES:
        return Verdict(
            Decision.REFRESH_THEN_RETRY, text, message, details, hint=both("credentials"), auth=True
        )
    if code in RATE_CODES:
        return Verdict(Decision.RATE_LIMITED, text, message, details)
    if code in RETRY_CODES:
        return Verdict(Decision.RETRY, text, message, details)
    if code == QUOTA_CODE:
        return Verdict(Decision.FATAL, text, message, details)
    hint_key = CONFIG_CODES.get(code) or ("permission" if code in PERMISSION_RANGE else None)
    hint = both(hint_key) if hint_key else None
    return Verdict(Decision.FATAL, text, message, details, hint=hint, auth=code in AUTH_CODES)
