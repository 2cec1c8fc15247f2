"""``[schedule]``: when ``crm-connector run`` syncs, scores, evaluates alerts and pushes.

Times are cron expressions in the clinic's time zone (``[clinic] timezone``), five fields as in
crontab(5): minute, hour, day of month, month, day of week — where 0 and 7 both mean Sunday, as in
crontab (APScheduler 3 would read 0 as Monday; :mod:`connector.scheduler` translates).

```toml
[schedule]
sync = "*/15 * * * *"        # every source without its own entry below; "off" = never
metrics = "after_sync"       # right after each successful sync; or a cron expression, or "off"
alerts = "after_sync"
push = "0 * * * *"
misfire_grace_seconds = 300
unhealthy_after_failures = 3
health_host = "127.0.0.1"
metrics_periods = ["month"]
recompute_previous_days = 3

[schedule.sources.zoho_main]
sync = "*/5 * * * *"
```
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from connector.metrics.periods import Granularity

OFF = "off"
AFTER_SYNC = "after_sync"

# Same rules as every config section (connector.config.models.SECTION_CONFIG, which imports this
# module and so cannot be imported here): unknown keys are errors, values are immutable.
_SECTION = ConfigDict(extra="forbid", frozen=True)


def _schedule(value: str, *words: str) -> str:
    value = " ".join(value.split())
    if value in words:
        return value
    from connector.scheduler import cron_trigger  # the one module that knows APScheduler

    try:
        cron_trigger(value)
    except ValueError as exc:
        raise ValueError(f"{exc}; other choices: {', '.join(repr(word) for word in words)}") from None
    return value


def _cron_or_off(value: str) -> str:
    return _schedule(value, OFF)


def _step_schedule(value: str) -> str:
    return _schedule(value, AFTER_SYNC, OFF)


CronOrOff = Annotated[str, AfterValidator(_cron_or_off)]
"""A cron expression, or ``"off"``."""
StepSchedule = Annotated[str, AfterValidator(_step_schedule)]
"""A cron expression, ``"after_sync"`` or ``"off"``."""


class SourceSchedule(BaseModel):
    """``[schedule.sources.<name>]``: a source synced on its own timetable."""

    model_config = _SECTION

    sync: CronOrOff = Field(description="When to sync this source; 'off' leaves it to manual syncs.")


class ScheduleSettings(BaseModel):
    """``[schedule]``: the jobs of ``crm-connector run`` and how their health is judged."""

    model_config = _SECTION

    sync: CronOrOff = Field(
        "*/15 * * * *", description="When to sync every source that has no [schedule.sources.<name>]."
    )
    metrics: StepSchedule = Field(
        AFTER_SYNC, description="When to recompute scorecards; 'after_sync' chains it to each sync."
    )
    alerts: StepSchedule = Field(
        AFTER_SYNC, description="When to evaluate alert rules; 'after_sync' runs them after metrics."
    )
    push: StepSchedule = Field("0 * * * *", description="When to write scorecards back to the CRM.")
    sources: dict[str, SourceSchedule] = Field(
        default_factory=dict, description="Per-source sync timetables, by source name."
    )
    misfire_grace_seconds: int = Field(
        300,
        ge=1,
        description="A run that could not start on time (the process was busy or down) still starts "
        "if it is at most this late; later ones are dropped (missed runs are folded into one). "
        "Also how long a metrics/alerts/push run waits for the same job in another process.",
    )
    unhealthy_after_failures: int = Field(
        3, ge=1, description="A job failing this many times in a row makes /healthz answer 503."
    )
    health_host: str = Field(
        "127.0.0.1", description="Address `run --health-port` listens on; 0.0.0.0 exposes it."
    )
    metrics_periods: list[Granularity] = Field(
        default_factory=lambda: ["month"],
        min_length=1,
        description="Periods the metrics job keeps fresh: day, week, month, quarter.",
    )
    recompute_previous_days: int = Field(
        3,
        ge=0,
        description="For this many days into a period, the metrics job also recomputes the previous "
        "period, so records the CRM reports late still land in the period they belong to.",
    )

    def step_schedule(self, step: str) -> str:
        """The schedule of a job that follows sync (``metrics``, ``alerts``, ``push``)."""
        return str(getattr(self, step))
