"""``[sources.<name>]`` keys of the ``zoho`` kind.

Which Zoho modules feed which entity is the mapping file's job (``object = "Cases"``; ``"users"``
means the Users API), not an option: a clinic that renamed a module or keeps surveys in a custom
module overrides the mapping (``extends = "zoho"``), so module names live in one place only.

Concurrency is capped by the org's edition (Zoho: Free 5, Standard 10, Professional 15,
Enterprise 20, Ultimate 25 simultaneous calls per org and app). Without ``edition`` the cap is the
smallest of them, which is safe for every org; other integrations share the same limit.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

DataCenter = Literal["us", "eu", "in", "au", "cn", "jp", "ca", "sa"]
Edition = Literal["free", "standard", "professional", "enterprise", "ultimate"]
Trigger = Literal["workflow", "approval", "blueprint", "pathfinder", "orchestration"]

#: Accounts (token) host and API domain per data centre (zoho.md §1.1).
DATA_CENTERS: dict[str, tuple[str, str]] = {
    "us": ("https://accounts.zoho.com", "https://www.zohoapis.com"),
    "eu": ("https://accounts.zoho.eu", "https://www.zohoapis.eu"),
    "in": ("https://accounts.zoho.in", "https://www.zohoapis.in"),
    "au": ("https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
    "cn": ("https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
    "jp": ("https://accounts.zoho.jp", "https://www.zohoapis.jp"),
    "ca": ("https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
    "sa": ("https://accounts.zoho.sa", "https://www.zohoapis.sa"),
}
EDITION_CONCURRENCY: dict[str, int] = {
    "free": 5,
    "standard": 10,
    "professional": 15,
    "enterprise": 20,
    "ultimate": 25,
}


class ZohoWrite(BaseModel):
    """``[sources.<name>.write]``: how scorecards and other records are written back."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    module: str = Field("Agent_Performance", min_length=1, description="Module scorecards are upserted to.")
    duplicate_check_fields: list[str] = Field(
        default_factory=lambda: ["Name"],
        description="Unique fields the upsert matches on (custom modules' system key is Name).",
    )
    trigger: list[Trigger] = Field(
        default_factory=list,
        description="Automations a write may fire; [] fires none (omitted, Zoho runs all).",
    )


class ZohoOptions(BaseModel):
    """Credentials, hosts, limits and write settings of one Zoho CRM org."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    client_id: str = Field(min_length=1, description="OAuth client id (Zoho API console).")
    client_secret: SecretStr = Field(description="OAuth client secret; use ${ENV}.")
    refresh_token: SecretStr = Field(description="Long-lived refresh token; use ${ENV}.")
    data_center: DataCenter = Field("us", description="The org's data centre; selects the accounts host.")
    accounts_url: str | None = Field(None, description="Override of the accounts host (sandbox, tests).")
    api_domain: str | None = Field(None, description="Override of the API domain the token reports.")
    api_version: str = Field("v8", pattern=r"^v\d+(\.\d+)?$")
    edition: Edition | None = Field(None, description="The org's edition; raises the concurrency cap.")
    concurrency: int = Field(1, ge=1, le=25, description="Simultaneous API calls (write batches).")
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(60.0, gt=0)
    max_retry_wait_s: float = Field(300.0, ge=0, description="Longest total back-off for one request.")
    overlap_s: int = Field(60, ge=0, description="Re-read window before the cursor (If-Modified-Since).")
    write: ZohoWrite = Field(default_factory=ZohoWrite)

    @field_validator("accounts_url", "api_domain")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a local sandbox)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _within_edition(self) -> Self:
        cap = EDITION_CONCURRENCY[self.edition or "free"]
        if self.concurrency > cap:
            edition = f"edition {self.edition!r}" if self.edition else "an unknown edition (set `edition`)"
            raise ValueError(f"concurrency {self.concurrency} exceeds Zoho's limit of {cap} for {edition}")
        return self

    @property
    def accounts_base(self) -> str:
        return self.accounts_url or DATA_CENTERS[self.data_center][0]

    @property
    def default_api_domain(self) -> str:
        return DATA_CENTERS[self.data_center][1]
