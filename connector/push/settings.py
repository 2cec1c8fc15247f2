"""``[push]``: which CRMs get the scorecards written back, and in which shape.

Where the records go inside a CRM is not set here but by the source itself: the module/object and
its upsert key are the source's ``[sources.<name>.write]`` options (Zoho ``module`` and
``duplicate_check_fields``, ShareCRM ``object`` and ``key_fields``), because the adapter applies its
upsert key only to that one target. Which CRM field receives which metric is mapping data
(``mappings/<kind>.push.toml``), overridable per source with ``field_maps``.

```toml
[push]
#sources = ["zoho_main"]            # default: every source whose CRM can take scorecards
per = "period"                      # "period": a record per agent per period; "agent": one per agent
periods = ["month"]                 # which stored scorecards are written: day, week, month, quarter
[push.field_maps]
#zoho_main = "zoho-push.toml"       # extends = "zoho" and overrides the bundled field map
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from connector.metrics.periods import Granularity


class PushSettings(BaseModel):
    """``[push]``: targets, record shape and field-map overrides of ``crm-connector push``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: list[str] | None = Field(
        None,
        description="Sources scorecards are written to; left out = every source whose kind has a "
        "bundled push field map (zoho, sharecrm); [] = none.",
    )
    per: Literal["period", "agent"] = Field(
        "period",
        description="'period': one record per agent and period (key: agent id + '_' + period); "
        "'agent': one record per agent (key: agent id) holding the latest period's values.",
    )
    periods: list[Granularity] = Field(
        default_factory=lambda: ["month"],
        min_length=1,
        description="Granularities of the stored scorecards to write (day, week, month, quarter).",
    )
    field_maps: dict[str, Path] = Field(
        default_factory=dict,
        description="Per source name, a push field-map file replacing or extending the bundled one.",
    )

    @field_validator("field_maps")
    @classmethod
    def _existing_files(cls, value: dict[str, Path], info: ValidationInfo) -> dict[str, Path]:
        # Relative to the config file's folder, as every path in the config (the loader's context).
        base_dir = (info.context or {}).get("base_dir")
        resolved = {}
        for name, path in value.items():
            path = path.expanduser()
            if not path.is_absolute() and base_dir is not None:
                path = Path(base_dir) / path
            if base_dir is not None and not path.is_file():
                raise ValueError(f"{name}: file not found: {path}")
            resolved[name] = path
        return resolved

    @model_validator(mode="after")
    def _one_period_per_agent_record(self) -> Self:
        if self.per == "agent" and len(self.periods) != 1:
            raise ValueError("per = 'agent' keeps one record per agent, so name exactly one of periods")
        return self
