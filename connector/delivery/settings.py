"""``[delivery]``: where each open alert is delivered, and how failed deliveries are retried.

Channels are ``crm_task`` (a task in the alert's own CRM, assigned to the agent; its fields come
from the source's push field map, ``[tasks]``) and any number of named webhooks. Each alert rule
lists its channels; a rule not listed uses ``default``.

```toml
[delivery]
enabled = true
retry_after = "5m"          # first retry of a failed delivery; doubles each time …
retry_max = "6h"            # … up to this
failing_after = 3           # failed attempts after which `status` lists the delivery
max_per_run = 100           # deliveries attempted per run (breaches first); the rest wait a run
[delivery.channels]
default = ["crm_task"]
first_response = ["crm_task", "service_group"]
[delivery.crm_task]
due_in_days = 0             # the task is due this many days after the day it is created
[delivery.webhooks.service_group]
url = "${WECOM_ROBOT_URL}"  # the URL carries the robot's key: keep it in the environment
format = "wecom"            # generic | wecom | dingtalk
language = "zh"             # zh | en | both (default: [clinic] language)
```
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connector.alerts.rules import RULE_NAMES
from connector.alerts.settings import parse_duration

CRM_TASK = "crm_task"
DEFAULT = "default"
TextLanguage = Literal["zh", "en", "both"]


class WebhookSettings(BaseModel):
    """``[delivery.webhooks.<name>]``: one HTTP endpoint (a group robot, or any JSON receiver)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SecretStr = Field(description="Where alerts are POSTed; robot URLs carry a key: use ${ENV}.")
    format: Literal["generic", "wecom", "dingtalk"] = Field(
        "generic",
        description="'generic' JSON, a WeCom (企业微信) group robot, or a DingTalk (钉钉) group robot.",
    )
    language: TextLanguage | None = Field(None, description="zh, en or both; default [clinic] language.")
    secret: SecretStr | None = Field(
        None, description="DingTalk robots with signing (加签): the SEC… secret; use ${ENV}."
    )
    timeout_s: float = Field(10.0, gt=0, le=120, description="Connect and read timeout of one POST.")

    @field_validator("url")
    @classmethod
    def _http(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a local receiver)")
        return value

    @model_validator(mode="after")
    def _secret_for_dingtalk(self) -> Self:
        if self.secret is not None and self.format != "dingtalk":
            raise ValueError("secret signs DingTalk robot calls; it needs format = 'dingtalk'")
        return self


class CrmTaskSettings(BaseModel):
    """``[delivery.crm_task]``: the task created in the alert's CRM."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    due_in_days: int = Field(0, ge=0, le=30, description="Due this many days after the day it is created.")
    close_on_resolve: bool = Field(True, description="Close the task when its alert resolves.")
    language: TextLanguage | None = Field(None, description="zh, en or both; default [clinic] language.")


class DeliverySettings(BaseModel):
    """``[delivery]``: channels per alert rule, the CRM task, webhooks, and the retry policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Deliver alerts at all (evaluation runs regardless).")
    channels: dict[str, list[str]] = Field(
        default_factory=lambda: {DEFAULT: [CRM_TASK]},
        description="Alert rule (or 'default') → channels: 'crm_task' and webhook names.",
    )
    crm_task: CrmTaskSettings = Field(default_factory=CrmTaskSettings)
    webhooks: dict[str, WebhookSettings] = Field(default_factory=dict)
    retry_after: str = Field("5m", description="Wait before the first retry of a failed delivery.")
    retry_max: str = Field("6h", description="Longest wait between retries (the wait doubles each time).")
    failing_after: int = Field(3, ge=1, description="Failed attempts after which `status` lists it.")
    max_per_run: int = Field(100, ge=1, description="Deliveries attempted per run; the rest wait.")

    @field_validator("channels", mode="after")
    @classmethod
    def _over_default(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(value) - {DEFAULT, *RULE_NAMES})
        if unknown:
            raise ValueError(f"unknown alert rule {unknown[0]!r}; rules: default, {', '.join(RULE_NAMES)}")
        return {DEFAULT: [CRM_TASK], **value}

    @field_validator("retry_after", "retry_max")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value) <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value

    @model_validator(mode="after")
    def _known_channels(self) -> Self:
        if CRM_TASK in self.webhooks:
            raise ValueError(f"webhooks.{CRM_TASK}: the name is taken by the CRM task channel")
        known = {CRM_TASK, *self.webhooks}
        for rule, channels in self.channels.items():
            for channel in channels:
                if channel not in known:
                    raise ValueError(
                        f"channels.{rule}: unknown channel {channel!r}; define [delivery.webhooks.{channel}] "
                        f"or use one of: {', '.join(sorted(known))}"
                    )
        return self

    def channels_for(self, rule: str) -> list[str]:
        return list(dict.fromkeys(self.channels.get(rule, self.channels[DEFAULT])))

    def retry_delay(self, attempts: int) -> timedelta:
        """Wait after the ``attempts``-th failed attempt: ``retry_after`` doubled each time, capped."""
        first, cap = parse_duration(self.retry_after), parse_duration(self.retry_max)
        return min(first * (2 ** min(max(attempts - 1, 0), 30)), cap)

    def language_of(self, channel: str, clinic_language: str) -> str:
        own: Any = self.crm_task.language if channel == CRM_TASK else self.webhooks[channel].language
        return own or clinic_language
