"""The push field map: which CRM field receives which scorecard value, and how alert tasks look.

It is mapping data, not code (design.md): each CRM kind ships ``mappings/<kind>.push.toml``, and a
clinic whose fields are named differently points ``[push.field_maps] <source> = "file.toml"`` at its
own file, which may say ``extends = "<kind>"`` and override only what differs (tables merge key by
key; ``Field = ""`` drops a bundled field).

```toml
[scorecards.fields]                 # CRM field API name = the value written to it
Name = "record_key"                 # a canonical name (see CANONICAL), or a table:
Composite_Score = { value = "composite", digits = 1 }
Satisfaction_Rate = { value = "satisfaction_rate", as = "percent", digits = 1 }
Bonus_Tier = { value = "bonus_pct", as = "text", format = "{:g}%" }

[tasks]                             # alert delivery's crm_task channel (omit: no CRM tasks)
object = "Tasks"
subject = "Subject"
...
```

Formatting happens here so that the hash in ``push_log`` is taken over exactly what is sent:
numbers are rounded to ``digits`` (2 by default), so recomputation noise in the 10th decimal never
causes a write. CRM-specific encodings (ShareCRM numbers as strings, employee fields as id lists)
are the adapter's job.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from connector.mapping import deep_merge
from connector.metrics import CATEGORIES, METRICS

#: Canonical values that identify the record (written as they are).
IDENTITY = ("record_key", "agent_id", "agent_name", "period")
#: Canonical numbers a field may carry: every metric, the categories and the scorecard's totals.
NUMBERS = (*METRICS, "follow_ups_target", *CATEGORIES, "composite", "bonus_pct", "rank", "trend")
CANONICAL = frozenset((*IDENTITY, *NUMBERS))


class PushMapError(ValueError):
    """A push field map that cannot be used; the message names the file and the key."""


class FieldSpec(BaseModel):
    """One CRM field: the canonical value it receives and how the number is written."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    value: str
    kind: Literal["number", "integer", "percent", "text", "lookup"] = Field("number", alias="as")
    digits: int = Field(2, ge=0, le=10)
    format: str | None = None

    @field_validator("value")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CANONICAL:
            raise ValueError(f"unknown scorecard value {value!r}; known: {', '.join(sorted(CANONICAL))}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.format is not None and self.kind != "text":
            raise ValueError("format applies to as = 'text' only")
        if self.kind == "lookup" and self.value != "agent_id":
            raise ValueError("as = 'lookup' (a reference {id = …}) applies to agent_id only")
        return self

    def render(self, value: Any) -> Any:
        """The value as sent: identity values unchanged (a lookup as ``{"id": …}``), numbers rounded,
        scaled or formatted."""
        if value is None:
            return None
        if self.kind == "lookup":
            return {"id": str(value)}
        if self.value in IDENTITY:
            return value
        number = float(value) * (100 if self.kind == "percent" else 1)
        if self.kind == "integer":
            return round(number)
        rounded = round(number, self.digits)
        if self.kind == "text":
            return self.format.format(rounded) if self.format else f"{rounded:g}"
        return rounded


class ScorecardMap(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: dict[str, FieldSpec] = Field(min_length=1)

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return {
            name: {"value": spec} if isinstance(spec, str) else spec
            for name, spec in value.items()
            if spec != ""  # an override drops a bundled field with Field = ""
        }

    def render(self, canonical: Mapping[str, Any]) -> dict[str, Any]:
        """The CRM record for one scorecard's canonical values."""
        return {name: spec.render(canonical.get(spec.value)) for name, spec in self.fields.items()}


class TaskLayout(BaseModel):
    """Where an alert task's parts go in the CRM's task object (fields left out are not written)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    object: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    owner: str | None = None
    due: str | None = None
    description: str | None = None
    status: str | None = None
    open_status: str | None = None
    closed_status: str | None = None
    priority: str | None = None
    priorities: dict[str, str] = Field(default_factory=dict)
    key_field: str | None = Field(
        None, description="Field holding the task's unique key; without it the key ends the subject."
    )
    constants: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _status_values(self) -> TaskLayout:
        if self.status and not (self.open_status and self.closed_status):
            raise ValueError("status needs open_status and closed_status (the values to write)")
        return self


class WriteMap(BaseModel):
    """A whole push field map file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scorecards: ScorecardMap
    tasks: TaskLayout | None = None


def bundled_write_map_path(kind: str) -> Path | None:
    """``mappings/<kind>.push.toml`` if the kind ships one (kinds without it cannot take writes)."""
    resource = resources.files("mappings").joinpath(f"{kind}.push.toml")
    return Path(str(resource)) if resource.is_file() else None


def load_write_map(kind: str, override: Path | None = None) -> WriteMap:
    """The source's field map: its override file (merged over the bundled one it extends) or the
    bundled one of ``kind``."""
    path = override or bundled_write_map_path(kind)
    if path is None:
        raise PushMapError(f"CRM kind {kind!r} has no push field map (mappings/{kind}.push.toml)")
    data = _read(path)
    base_name = data.pop("extends", None)
    if base_name is not None:
        base = bundled_write_map_path(str(base_name))
        if base is None:
            raise PushMapError(f"{path}: extends: no bundled push field map named {base_name!r}")
        data = deep_merge(_read(base), data)
    try:
        return WriteMap.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PushMapError(f"{path}: {where}: {first['msg']}") from None


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PushMapError(f"{path}: {exc}") from None
