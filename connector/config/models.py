"""The config file's shape as pydantic models: what each key means, its default, and what is valid.

Every section model uses :data:`SECTION_CONFIG` (unknown keys are errors, values immutable), so a
typo is reported instead of silently ignored. Validators raise ``ValueError`` with a message written
for the admin; :mod:`connector.config.problems` adds the file and key path. Paths in the file are
relative to the config file's folder: the loader passes it as validation context ``base_dir``.
"""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializeAsAny,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from connector.adapter import adapter_kinds
from connector.alerts.settings import AlertSettings
from connector.config.problems import did_you_mean, show
from connector.delivery.settings import DeliverySettings
from connector.i18n import Lang
from connector.metrics.settings import ScorecardSettings
from connector.push.settings import PushSettings
from connector.schedule_settings import ScheduleSettings
from connector.store.schema import SYNCED_ENTITIES

SECTION_CONFIG = ConfigDict(extra="forbid", frozen=True)
"""Model config for every config section, including those defined in other modules."""

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)

_RANGE = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_WORKDAY = [(time(8, 0), time(12, 0)), (time(14, 0), time(17, 30))]
DEFAULT_HOURS: dict[Weekday, list[tuple[time, time]]] = {
    day: list(_WORKDAY) if day not in ("sat", "sun") else [] for day in WEEKDAYS
}
STORE_DRIVERS = ("sqlite", "postgresql", "postgresql+psycopg")


def _resolve_against_config_dir(value: Path, info: ValidationInfo) -> Path:
    base_dir = (info.context or {}).get("base_dir")
    value = value.expanduser()
    return value if value.is_absolute() or base_dir is None else Path(base_dir) / value


ConfigPath = Annotated[Path, AfterValidator(_resolve_against_config_dir)]
"""A path in the config file: relative ones are taken from the config file's folder."""


def _existing_file(value: Path) -> Path:
    if not value.is_file():
        raise ValueError(f"file not found: {value}")
    return value


def _parse_range(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    match = _RANGE.fullmatch(value)
    try:
        if match is None:
            raise ValueError
        start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
        return time(start_h, start_m), time(end_h, end_m)
    except ValueError:
        raise ValueError(f"expected a time range 'HH:MM-HH:MM', got {value!r}") from None


def _start_before_end(value: tuple[time, time]) -> tuple[time, time]:
    start, end = value
    if start >= end:
        raise ValueError(f"start {start:%H:%M} is not before end {end:%H:%M}")
    return value


def _no_overlap(ranges: list[tuple[time, time]]) -> list[tuple[time, time]]:
    ordered = sorted(ranges)
    for (a_start, a_end), (b_start, b_end) in itertools.pairwise(ordered):
        if b_start < a_end:
            raise ValueError(
                f"time ranges {a_start:%H:%M}-{a_end:%H:%M} and {b_start:%H:%M}-{b_end:%H:%M} overlap"
            )
    return ordered


def _parse_date(value: Any) -> date:
    # Strictly ISO: pydantic's lax mode would also read 20261008 (a number) as seconds since 1970.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"expected an ISO date (YYYY-MM-DD), got {show(value)}")


TimeRange = Annotated[tuple[time, time], BeforeValidator(_parse_range), AfterValidator(_start_before_end)]
"""``"08:00-12:00"`` in the file; ``(time(8), time(12))`` in Python."""
DayHours = Annotated[list[TimeRange], AfterValidator(_no_overlap)]
IsoDate = Annotated[date, BeforeValidator(_parse_date)]


class StoreConfig(BaseModel):
    """``[store]``: where the local SQL store lives."""

    model_config = SECTION_CONFIG

    url: str = Field(default="sqlite:///connector.db", validate_default=True)

    @field_validator("url")
    @classmethod
    def _supported_url(cls, value: str, info: ValidationInfo) -> str:
        # The input is never echoed: a PostgreSQL URL may carry a password.
        try:
            url = make_url(value)
        except (ArgumentError, ValueError):
            raise ValueError(
                "not a database URL; expected e.g. sqlite:///connector.db "
                "or postgresql+psycopg://user:${PGPASSWORD}@host:5432/dbname"
            ) from None
        if url.drivername not in STORE_DRIVERS:
            raise ValueError(
                f"unsupported database {url.drivername!r}; use one of: {', '.join(STORE_DRIVERS)}"
            )
        if url.drivername == "sqlite" and url.database and url.database != ":memory:":
            path = _resolve_against_config_dir(Path(url.database), info)
            return url.set(database=str(path)).render_as_string(hide_password=False)
        return value

    def __repr_args__(self) -> Any:
        # repr/str of the config must not show a database password, just as SecretStr does not.
        yield "url", make_url(self.url).render_as_string(hide_password=True)


class CalendarConfig(BaseModel):
    """``[clinic.calendar]``: the data the business calendar (working hours, holidays) is built from."""

    model_config = SECTION_CONFIG

    statutory: str = "CN"
    holidays: list[IsoDate] = Field(default_factory=list)
    working_days: list[IsoDate] = Field(default_factory=list)
    hours: dict[Weekday, DayHours] = Field(default_factory=dict, validate_default=True)
    makeup_day_hours: DayHours = Field(
        default_factory=lambda data: list(data.get("hours", {}).get("mon", []))
    )

    @field_validator("statutory")
    @classmethod
    def _known_country(cls, value: str) -> str:
        countries = holidays.list_supported_countries()
        if value and value not in countries:
            raise ValueError(
                f"no statutory holidays known for country code {value!r}{did_you_mean(value, countries)} "
                "(use a code the 'holidays' package knows, e.g. 'CN', or '' for none)"
            )
        return value

    @field_validator("hours", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        # Days left out keep their default, so opening on Saturday mornings does not erase Mon–Fri.
        return {**DEFAULT_HOURS, **value} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _holiday_or_working_day(self) -> CalendarConfig:
        both = sorted(set(self.holidays) & set(self.working_days))
        if both:
            listed = ", ".join(day.isoformat() for day in both)
            raise ValueError(f"listed both in holidays and in working_days: {listed}")
        return self


class ClinicConfig(BaseModel):
    """``[clinic]``: the clinic's time zone, staff language and business calendar."""

    model_config = SECTION_CONFIG

    timezone: str = "Asia/Shanghai"
    language: Lang = "zh"
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            hint = did_you_mean(value, available_timezones())
            raise ValueError(f"unknown IANA time zone {value!r}{hint}") from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _synced_entity(value: str) -> str:
    if value not in SYNCED_ENTITIES:
        hint = did_you_mean(value, SYNCED_ENTITIES)
        raise ValueError(f"unknown entity {value!r}{hint} (known: {', '.join(SYNCED_ENTITIES)})")
    return value


def _not_empty(value: list[str]) -> list[str]:
    if not value:
        raise ValueError("empty list; leave the key out to sync every entity the source offers")
    return value


EntityList = Annotated[list[Annotated[str, AfterValidator(_synced_entity)]], AfterValidator(_not_empty)]


class SourceConfig(BaseModel):
    """``[sources.<name>]``: one CRM account. Keys besides these go to the kind's ``options`` model."""

    model_config = SECTION_CONFIG

    name: str
    kind: str
    mapping: Annotated[ConfigPath, AfterValidator(_existing_file)] | None = None
    entities: EntityList | None = None
    options: SerializeAsAny[BaseModel]

    @field_validator("kind")
    @classmethod
    def _registered_kind(cls, value: str) -> str:
        kinds = adapter_kinds()
        if value not in kinds:
            known = ", ".join(sorted(kinds)) or "none registered"
            raise ValueError(
                f"unknown source kind {value!r}{did_you_mean(value, kinds)} (known kinds: {known})"
            )
        return value


class Config(BaseModel):
    """The whole config file. A new section is one field whose model uses :data:`SECTION_CONFIG`."""

    model_config = SECTION_CONFIG

    store: StoreConfig = Field(default_factory=StoreConfig)
    clinic: ClinicConfig = Field(default_factory=ClinicConfig)
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    scorecard: ScorecardSettings = Field(default_factory=ScorecardSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    push: PushSettings = Field(default_factory=PushSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)

    _path: Path = PrivateAttr(default=Path("connector.toml"))

    @model_validator(mode="before")
    @classmethod
    def _store_default_in_context(cls, data: Any) -> Any:
        # A missing [store] still needs its default sqlite path resolved against the config folder.
        return {**data, "store": {}} if isinstance(data, dict) and "store" not in data else data

    @model_validator(mode="after")
    def _remember_path(self, info: ValidationInfo) -> Config:
        if info.context and "path" in info.context:
            self._path = info.context["path"]
        return self

    @property
    def path(self) -> Path:
        """The file this config was loaded from."""
        return self._path
