"""``[sources.<name>]`` keys of the ``sharecrm`` kind (纷享销客 / fxiaoke open API, legacy body auth).

Which ShareCRM objects feed which entity is the mapping file's job, not an option: the work-order
object (``CasesObj`` by default), the call-record object (``TelesalesRecordObj`` by default, often
``ServiceRecordObj``) and every tenant custom field are set in a mapping that ``extends =
"sharecrm"``, so object and field names live in one place only. ``object = "users"`` means the
employee directory (``/cgi/user/list``) rather than a CRM object.

The operator (``currentOpenUserId``) decides what the API lets the connector see: ShareCRM answers
every query with only the records that employee may see and says nothing about the rest, so an
operator who is not a CRM administrator makes data go silently missing.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

DEFAULT_BASE_URL = "https://open.fxiaoke.com"
#: ShareCRM's documented per-endpoint limit: 100 calls per 20 seconds (sharecrm.md §5.2).
DOCUMENTED_CALLS = 100
DOCUMENTED_WINDOW_S = 20.0
MAX_PAGE = 100

OPERATOR_NOTE = (
    "Must be a CRM administrator (CRM管理员): ShareCRM returns only the records the operator may see, "
    "without any error, so any other employee makes data silently missing."
)


class ShareCrmWrite(BaseModel):
    """``[sources.<name>.write]``: how scorecards and other records are written back."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    object: str = Field(
        "object_perf__c",
        min_length=1,
        description="Object scorecards are upserted to (a custom object ends in __c).",
    )
    key_fields: list[str] = Field(
        default_factory=lambda: ["field_employee__c", "field_period__c"],
        description="Fields that identify a record of `object`: an upsert queries them, then "
        "updates or creates.",
    )
    employee_fields: list[str] = Field(
        default_factory=lambda: ["owner", "field_employee__c"],
        description="Employee/department fields, sent as lists of ids even when one id is given.",
    )
    trigger_workflow: bool = Field(
        False, description="Let writes fire the tenant's workflows (ShareCRM's default is to fire them)."
    )


class ShareCrmOptions(BaseModel):
    """Credentials, host, operator, limits and write settings of one ShareCRM tenant."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    app_id: str = Field(min_length=1, description="Self-built app id (FSAID_…), admin console → apps.")
    app_secret: SecretStr = Field(description="The app's appSecret; use ${ENV}.")
    permanent_code: SecretStr = Field(description="The app's permanentCode; use ${ENV}.")
    operator_open_user_id: str | None = Field(
        None,
        min_length=1,
        description="currentOpenUserId (FSUID_…) every CRM call runs as. " + OPERATOR_NOTE,
    )
    operator_mobile: str | None = Field(
        None,
        min_length=1,
        description="Alternative to operator_open_user_id: the operator's mobile number, resolved "
        "through /cgi/user/getByMobile. " + OPERATOR_NOTE,
    )
    base_url: str = Field(
        DEFAULT_BASE_URL,
        description="API gateway: open.fxiaoke.com, or the tenant's cloud (open-hwcloud.fxiaoke.com, "
        "open-ale.fxiaoke.com, open-hws.fxiaoke.com, open-ksc.sharecrm.com, open-na.sharecrm.com); "
        "http://127.0.0.1:<port> for the sandbox.",
    )
    overlap_s: int = Field(
        600, ge=0, description="Re-read window before the last run's start time (late commits, clock skew)."
    )
    page_size: int = Field(
        MAX_PAGE, ge=1, le=MAX_PAGE, description="Records per query (ShareCRM caps at 100)."
    )
    id_scan_interval_hours: float = Field(
        24.0,
        ge=0,
        description="How often an id-only scan finds hard-deleted records (0 = every sync).",
    )
    rate_limit_calls: int = Field(
        DOCUMENTED_CALLS, ge=1, le=DOCUMENTED_CALLS, description="Calls allowed per endpoint per window."
    )
    rate_limit_window_s: float = Field(
        DOCUMENTED_WINDOW_S,
        gt=0,
        description="The limiter's window in seconds; ShareCRM's is 20 (shorten only against a sandbox).",
    )
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(60.0, gt=0)
    max_retry_wait_s: float = Field(300.0, ge=0, description="Longest total back-off for one request.")
    write: ShareCrmWrite = Field(default_factory=ShareCrmWrite)

    @field_validator("base_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a local sandbox)")
        if "www.fxiaoke.com" in value:
            raise ValueError("www.fxiaoke.com is the web site, not the API; use https://open.fxiaoke.com")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_operator(self) -> Self:
        if (self.operator_open_user_id is None) == (self.operator_mobile is None):
            raise ValueError(
                "set exactly one of operator_open_user_id (FSUID_…) or operator_mobile; "
                "the operator must be a CRM administrator"
            )
        return self
