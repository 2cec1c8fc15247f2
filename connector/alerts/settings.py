"""The ``[alerts]`` section of the config: which rules run and how early they warn.

Limits and the SLA clock (24 h first response, 48 h resolution, calendar or business hours) are *not*
here: they come from ``[scorecard]`` so an alert and the scorecard never disagree about what a breach
is. This section only says whether each rule runs, how long before a limit a warning fires, and the
thresholds that exist only for alerts.

```toml
[alerts]
enabled = true                      # master switch; false closes every open alert on the next run
[alerts.first_response]
enabled = true
warn_before = "2h"                  # "2h" / "90m" (hours of the SLA clock) or "25%" (share of the limit)
[alerts.resolution]
enabled = true
warn_before = "0h"                  # "0h" = breach only, no warning
[alerts.follow_up_overdue]
enabled = true
[alerts.low_score]
enabled = true
max_score = 2                       # a rating of 1..max_score (of 5) alerts
lookback = "7d"                     # only ratings received this recently; older ones close
[alerts.low_composite]
enabled = true
threshold = 80                      # month-to-date composite strictly below this alerts
from_day = 1                        # first day of the month the rule runs (early-month scores are thin)
```
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_DURATION = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>[smhd])\s*$")
_SHARE = re.compile(r"^\s*(?P<n>\d+(?:\.\d+)?)\s*%\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Default warning lead per deadline rule, also when its section is given without ``warn_before``.
_DEFAULT_LEADS = {"first_response": "2h", "resolution": "0h"}


def parse_duration(text: str) -> timedelta:
    """``"90m"``, ``"2h"``, ``"1.5h"``, ``"7d"`` → timedelta; raises ValueError naming the format."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; use a number with s, m, h or d, e.g. '2h'")
    return timedelta(seconds=float(match["n"]) * _UNITS[match["unit"]])


def _lead(text: str, limit: timedelta) -> timedelta:
    share = _SHARE.match(text)
    if share:
        return limit * (float(share["n"]) / 100)
    return parse_duration(text)


class RuleSwitch(BaseModel):
    """A rule with nothing to set but on/off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True


class DeadlineRule(RuleSwitch):
    """A rule with a limit from ``[scorecard]`` and an optional warning before it."""

    warn_before: str = "0h"

    @field_validator("warn_before")
    @classmethod
    def _check_lead(cls, value: str) -> str:
        share = _SHARE.match(value)
        if share:
            if not 0 <= float(share["n"]) <= 100:
                raise ValueError(f"{value!r}: a share of the limit must be between 0% and 100%")
            return value
        try:
            parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"{exc}, or a share of the limit such as '25%'") from None
        return value

    def lead(self, limit: timedelta) -> timedelta:
        """How long before ``limit`` the warning fires, never more than the limit itself.

        ``"25%"`` of a 24 h limit is 6 h: the warning fires once 18 h of the clock have run.
        """
        return min(_lead(self.warn_before, limit), limit)


class LowScoreRule(RuleSwitch):
    max_score: int = Field(2, ge=1, le=4)
    lookback: str = "7d"

    @field_validator("lookback")
    @classmethod
    def _check_lookback(cls, value: str) -> str:
        if parse_duration(value) <= timedelta(0):
            raise ValueError("lookback must be longer than zero")
        return value

    @property
    def lookback_delta(self) -> timedelta:
        return parse_duration(self.lookback)


class LowCompositeRule(RuleSwitch):
    threshold: float = Field(80.0, ge=0, le=100)
    from_day: int = Field(1, ge=1, le=28)


class AlertSettings(BaseModel):
    """``[alerts]``: every rule on by default, with the defaults documented in the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    first_response: DeadlineRule = DeadlineRule(warn_before=_DEFAULT_LEADS["first_response"])
    resolution: DeadlineRule = DeadlineRule(warn_before=_DEFAULT_LEADS["resolution"])
    follow_up_overdue: RuleSwitch = RuleSwitch()
    low_score: LowScoreRule = LowScoreRule()
    low_composite: LowCompositeRule = LowCompositeRule()

    @model_validator(mode="before")
    @classmethod
    def _default_leads(cls, data: Any) -> Any:
        # Both deadline rules share one model, so a section given without warn_before (say just
        # `enabled = true`) would otherwise get the model's default instead of this rule's.
        if not isinstance(data, dict):
            return data
        filled = dict(data)
        for rule, lead in _DEFAULT_LEADS.items():
            section = filled.get(rule, {})
            if isinstance(section, dict) and "warn_before" not in section:
                filled[rule] = {**section, "warn_before": lead}
        return filled

    def is_on(self, rule: str) -> bool:
        """Whether ``rule`` (one of the field names above) runs, honouring the master switch."""
        settings: RuleSwitch = getattr(self, rule)
        return self.enabled and settings.enabled
