"""Config loading: every problem reported at once, readable, keyed by path; secrets never shown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connector import adapter
from connector.config import (
    WEEKDAYS,
    CalendarConfig,
    ClinicConfig,
    Config,
    ConfigError,
    ConfigPath,
    SourceConfig,
    StoreConfig,
    load_config,
    parse_config,
    starter_config,
)

SECRET = "s3cr3t-Hunter2-value"
PG_PASSWORD = "pg-Pa55word-xyz"
ENV = {"CRM_SECRET": SECRET, "TENANT": "acme", "PGPASSWORD": PG_PASSWORD, "BLANK": ""}
WORKDAY = [(time(8), time(12)), (time(14), time(17, 30))]
REPO = Path(__file__).resolve().parent.parent


class CrmTestOptions(BaseModel):
    """A throwaway kind's options: enough shape to exercise dispatch, types and secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str
    client_secret: SecretStr = Field(min_length=8)
    page_size: int = 200
    base_url: str = "https://crm.example"

    @field_validator("client_secret")
    @classmethod
    def _no_spaces(cls, value: SecretStr) -> SecretStr:
        # Deliberately careless (echoes the secret), as an adapter's validator might be.
        if " " in value.get_secret_value():
            raise ValueError(f"must not contain spaces: {value.get_secret_value()}")
        return value


class JsonlStandIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: ConfigPath


def _unused_factory(context: adapter.AdapterContext) -> adapter.Adapter:
    raise AssertionError("config loading must not build adapters")


@pytest.fixture(autouse=True)
def kinds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register throwaway kinds in a copy of the registry, restored after the test."""
    real = adapter.adapter_kinds()  # import the bundled adapters into the real registry first
    monkeypatch.setattr(adapter, "_REGISTRY", dict(real))
    adapter.register("crm_test", adapter.AdapterKind(_unused_factory, CrmTestOptions))
    if "jsonl" not in real:
        adapter.register("jsonl", adapter.AdapterKind(_unused_factory, JsonlStandIn))
    yield


def _parse(text: str, folder: Path, environ: dict[str, str] | None = None) -> Config:
    return parse_config(text, folder / "connector.toml", environ=ENV if environ is None else environ)


def _problems(text: str, folder: Path) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        _parse(text, folder)
    return [(problem.key, problem.message) for problem in caught.value.problems]


SOURCE = '[sources.main]\nkind = "crm_test"\nclient_id = "id"\nclient_secret = "${CRM_SECRET}"\n'

BAD_CASES: list[tuple[str, str, str, str]] = [
    # (id, TOML, key path, message fragment)
    ("toml syntax", "[clinic]\nlanguage = \n", "", "TOML syntax error: Invalid value (at line 2, column 12)"),
    ("unknown section", '[stor]\nurl = "sqlite://"\n', "stor", "unknown key 'stor'; did you mean 'store'?"),
    (
        "unknown key",
        '[clinic]\ntimezon = "UTC"\n',
        "clinic.timezon",
        "unknown key 'timezon'; did you mean 'timezone'?",
    ),
    (
        "unknown key, no near match",
        "[clinic]\nxyz = 1\n",
        "clinic.xyz",
        "valid keys: calendar, language, timezone",
    ),
    (
        "bad time zone",
        '[clinic]\ntimezone = "Asia/Shangai"\n',
        "clinic.timezone",
        "unknown IANA time zone 'Asia/Shangai'",
    ),
    (
        "time zone hint",
        '[clinic]\ntimezone = "Asia/Shangai"\n',
        "clinic.timezone",
        "did you mean 'Asia/Shanghai'?",
    ),
    ("language", '[clinic]\nlanguage = "fr"\n', "clinic.language", "expected 'zh' or 'en', got 'fr'"),
    ("section not a table", "clinic = 3\n", "clinic", "expected a table, got 3"),
    ("url garbage", '[store]\nurl = "not a url"\n', "store.url", "not a database URL"),
    ("url dialect", '[store]\nurl = "mysql://u@h/db"\n', "store.url", "unsupported database 'mysql'"),
    ("url type", "[store]\nurl = 5\n", "store.url", "expected a string, got 5"),
    ("statutory", '[clinic.calendar]\nstatutory = "XX"\n', "clinic.calendar.statutory", "country code 'XX'"),
    (
        "statutory case",
        '[clinic.calendar]\nstatutory = "cn"\n',
        "clinic.calendar.statutory",
        "did you mean 'CN'?",
    ),
    (
        "holiday not ISO",
        '[clinic.calendar]\nholidays = ["2026-10-08", "2026-13-01"]\n',
        "clinic.calendar.holidays[1]",
        "expected an ISO date (YYYY-MM-DD), got '2026-13-01'",
    ),
    (
        "holiday as number",
        "[clinic.calendar]\nholidays = [20261008]\n",
        "clinic.calendar.holidays[0]",
        "expected an ISO date (YYYY-MM-DD), got 20261008",
    ),
    (
        "working day with a time",
        "[clinic.calendar]\nworking_days = [2026-09-27T08:00:00]\n",
        "clinic.calendar.working_days[0]",
        "got 2026-09-27T08:00:00",
    ),
    (
        "holiday and working day",
        '[clinic.calendar]\nholidays = ["2026-10-08"]\nworking_days = [2026-10-08]\n',
        "clinic.calendar",
        "listed both in holidays and in working_days: 2026-10-08",
    ),
    (
        "hours start after end",
        '[clinic.calendar.hours]\nmon = ["08:00-12:00", "17:00-14:00"]\n',
        "clinic.calendar.hours.mon[1]",
        "start 17:00 is not before end 14:00",
    ),
    (
        "hours format",
        '[clinic.calendar.hours]\ntue = ["8-12"]\n',
        "clinic.calendar.hours.tue[0]",
        "expected a time range 'HH:MM-HH:MM', got '8-12'",
    ),
    (
        "hours out of range",
        '[clinic.calendar.hours]\nwed = ["08:00-24:30"]\n',
        "clinic.calendar.hours.wed[0]",
        "got '08:00-24:30'",
    ),
    (
        "hours overlap",
        '[clinic.calendar.hours]\nthu = ["08:00-12:00", "11:30-13:00"]\n',
        "clinic.calendar.hours.thu",
        "time ranges 08:00-12:00 and 11:30-13:00 overlap",
    ),
    (
        "unknown weekday",
        "[clinic.calendar.hours]\nmonday = []\n",
        "clinic.calendar.hours.monday",
        "unknown key 'monday'",
    ),
    (
        "makeup hours",
        '[clinic.calendar]\nmakeup_day_hours = ["09:00"]\n',
        "clinic.calendar.makeup_day_hours[0]",
        "expected a time range",
    ),
    ("sources not a table", "sources = 3\n", "sources", "expected a table, got 3"),
    ("source not a table", "[sources]\nmain = 3\n", "sources.main", "expected a table, got 3"),
    ("missing kind", '[sources.main]\nclient_id = "x"\n', "sources.main.kind", "missing required key"),
    ("unknown kind", '[sources.main]\nkind = "zohoo"\n', "sources.main.kind", "unknown source kind 'zohoo'"),
    ("known kinds listed", '[sources.main]\nkind = "nope"\n', "sources.main.kind", "crm_test"),
    ("kind type", "[sources.main]\nkind = 1\n", "sources.main.kind", "expected a string, got 1"),
    (
        "option type",
        SOURCE + 'page_size = "abc"\n',
        "sources.main.page_size",
        "expected an integer, got 'abc'",
    ),
    (
        "option missing",
        '[sources.main]\nkind = "crm_test"\nclient_secret = "12345678"\n',
        "sources.main.client_id",
        "missing",
    ),
    ("option typo", SOURCE + "pagesize = 5\n", "sources.main.pagesize", "did you mean 'page_size'?"),
    ("common key typo", SOURCE + 'mapings = "m.toml"\n', "sources.main.mapings", "did you mean 'mapping'?"),
    ("mapping missing", SOURCE + 'mapping = "nope.toml"\n', "sources.main.mapping", "file not found: "),
    (
        "entity unknown",
        SOURCE + 'entities = ["ticket"]\n',
        "sources.main.entities[0]",
        "did you mean 'tickets'?",
    ),
    ("entities empty", SOURCE + "entities = []\n", "sources.main.entities", "leave the key out"),
    ("source name", SOURCE.replace("main", '"main clinic"'), 'sources."main clinic"', "letters, digits"),
    (
        "schedule names no source",
        SOURCE + '[schedule.sources.mian]\nsync = "*/5 * * * *"\n',
        "schedule.sources.mian",
        "there is no [sources.mian]; did you mean 'main'? (configured: main)",
    ),
    (
        "push sources name no source",
        SOURCE + '[push]\nsources = ["main", "b"]\n',
        "push.sources[1]",
        "there is no [sources.b] (configured: main)",
    ),
    (
        "env missing",
        '[clinic]\ntimezone = "${NO_SUCH_VAR}"\n',
        "clinic.timezone",
        "environment variable NO_SUCH_VAR is not set",
    ),
    ("env empty", '[store]\nurl = "${BLANK}"\n', "store.url", "environment variable BLANK is empty"),
    (
        "env in list",
        '[clinic.calendar]\nholidays = ["${NOPE}"]\n',
        "clinic.calendar.holidays[0]",
        "NOPE is not set",
    ),
    (
        "env in option",
        SOURCE + 'base_url = "https://${NO_HOST}/api"\n',
        "sources.main.base_url",
        "NO_HOST is not set",
    ),
]


@pytest.mark.parametrize(
    ("toml", "key", "fragment"), [case[1:] for case in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_config_names_key_and_problem(tmp_path: Path, toml: str, key: str, fragment: str) -> None:
    problems = _problems(toml, tmp_path)
    assert any(k == key and fragment in message for k, message in problems), problems


def test_mapping_path_in_message_is_resolved_against_config_folder(tmp_path: Path) -> None:
    [(_key, message)] = _problems(SOURCE + 'mapping = "maps/zoho.toml"\n', tmp_path)
    assert message == f"file not found: {tmp_path / 'maps' / 'zoho.toml'}"


def test_a_broken_source_is_not_also_reported_missing(tmp_path: Path) -> None:
    """Keys naming a source with a problem of its own get no "there is no [sources.main]" on top."""
    schedule = '[schedule.sources.main]\nsync = "*/5 * * * *"\n'
    text = SOURCE + "pagesize = 5\n" + schedule + '[push]\nsources = ["main"]\n'
    assert [key for key, _ in _problems(text, tmp_path)] == ["sources.main.pagesize"]


def test_every_problem_is_reported_in_one_pass(tmp_path: Path) -> None:
    text = (
        '[store]\nurl = "mysql://x"\n'
        '[clinic]\ntimezon = "UTC"\nlanguage = "de"\n'
        '[clinic.calendar.hours]\nmon = ["12:00-08:00"]\n'
        '[sources.a]\nkind = "crm_test"\nclient_id = 7\nclient_secret = "${CRM_SECRET}"\n'
        'entities = ["calls", "x"]\n'
        '[sources.b]\nkind = "unknown"\nmapping = "missing.toml"\n'
    )
    with pytest.raises(ConfigError) as caught:
        _parse(text, tmp_path)
    keys = [problem.key for problem in caught.value.problems]
    assert keys == sorted(
        [
            "store.url",
            "clinic.timezon",
            "clinic.language",
            "clinic.calendar.hours.mon[0]",
            "sources.a.client_id",
            "sources.a.entities[1]",
            "sources.b.kind",
            "sources.b.mapping",
        ]
    )
    lines = str(caught.value).splitlines()
    assert len(lines) == len(keys)
    config_file = tmp_path / "connector.toml"
    assert all(problem.file == config_file for problem in caught.value.problems)
    assert lines[0] == f"{config_file}: clinic.calendar.hours.mon[0]: start 12:00 is not before end 08:00"


def test_missing_env_var_does_not_add_follow_on_problems(tmp_path: Path) -> None:
    # "${DB_URL}" left in place is no database URL; only the real cause is reported.
    assert _problems('[store]\nurl = "${DB_URL}"\n', tmp_path) == [
        ("store.url", "environment variable DB_URL is not set")
    ]


def test_defaults(tmp_path: Path) -> None:
    config = _parse("", tmp_path)
    assert config.path == tmp_path / "connector.toml"
    assert config.store.url == f"sqlite:///{tmp_path / 'connector.db'}"
    assert config.clinic.timezone == "Asia/Shanghai"
    assert config.clinic.tz.key == "Asia/Shanghai"
    assert config.clinic.language == "zh"
    calendar = config.clinic.calendar
    assert calendar.statutory == "CN"
    assert calendar.holidays == calendar.working_days == []
    workday = [(time(8), time(12)), (time(14), time(17, 30))]
    assert calendar.hours == {
        **dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), workday),
        "sat": [],
        "sun": [],
    }
    assert calendar.makeup_day_hours == workday
    assert config.sources == {}


GOOD_CASES: list[tuple[str, str, Any, Any]] = [
    # (id, TOML, attribute path on Config, expected value)
    ("language en", '[clinic]\nlanguage = "en"\n', "clinic.language", "en"),
    ("time zone", '[clinic]\ntimezone = "Europe/Berlin"\n', "clinic.tz.key", "Europe/Berlin"),
    ("no statutory", '[clinic.calendar]\nstatutory = ""\n', "clinic.calendar.statutory", ""),
    (
        "dates as strings or TOML dates",
        '[clinic.calendar]\nholidays = ["2026-10-08", 2026-10-09]\n',
        "clinic.calendar.holidays",
        [date(2026, 10, 8), date(2026, 10, 9)],
    ),
    (
        "a listed day replaces only its default",
        '[clinic.calendar.hours]\nsat = ["08:30-11:30"]\n',
        "clinic.calendar.hours",
        {
            **{day: WORKDAY for day in ("mon", "tue", "wed", "thu", "fri")},
            "sat": [(time(8, 30), time(11, 30))],
            "sun": [],
        },
    ),
    (
        "ranges are sorted",
        '[clinic.calendar.hours]\nmon = ["13:00-17:00", "08:00-12:00"]\n',
        "clinic.calendar.hours.mon",
        [(time(8), time(12)), (time(13), time(17))],
    ),
    (
        "make-up days follow Monday",
        '[clinic.calendar.hours]\nmon = ["07:30-15:00"]\n',
        "clinic.calendar.makeup_day_hours",
        [(time(7, 30), time(15))],
    ),
    (
        "make-up day hours of their own",
        '[clinic.calendar]\nmakeup_day_hours = ["09:00-12:00"]\n',
        "clinic.calendar.makeup_day_hours",
        [(time(9), time(12))],
    ),
    (
        "env inside a string",
        SOURCE + 'base_url = "https://${TENANT}.crm.example/v2"\n',
        "sources.main.options.base_url",
        "https://acme.crm.example/v2",
    ),
    ("env in a list", SOURCE + 'entities = ["${TENANT_ENTITY}"]\n', "sources.main.entities", ["tickets"]),
    ("option default", SOURCE, "sources.main.options.page_size", 200),
    ("option value", SOURCE + "page_size = 50\n", "sources.main.options.page_size", 50),
    ("source name", SOURCE, "sources.main.name", "main"),
    ("source kind", SOURCE, "sources.main.kind", "crm_test"),
    ("secret substituted", SOURCE, "sources.main.options.client_secret.get_secret_value", SECRET),
    ("memory sqlite", '[store]\nurl = "sqlite:///:memory:"\n', "store.url", "sqlite:///:memory:"),
    (
        "absolute sqlite",
        '[store]\nurl = "sqlite:////var/lib/crm/x.db"\n',
        "store.url",
        "sqlite:////var/lib/crm/x.db",
    ),
    (
        "postgres",
        '[store]\nurl = "postgresql+psycopg://app:${PGPASSWORD}@db:5432/crm"\n',
        "store.url",
        f"postgresql+psycopg://app:{PG_PASSWORD}@db:5432/crm",
    ),
    (
        "postgres default driver",
        '[store]\nurl = "postgresql://app@db/crm"\n',
        "store.url",
        "postgresql://app@db/crm",
    ),
]


def _attribute(config: Config, dotted: str) -> Any:
    value: Any = config
    for name in dotted.split("."):
        value = value[name] if isinstance(value, dict) else getattr(value, name)
    return value() if callable(value) else value


@pytest.mark.parametrize(
    ("toml", "attribute", "expected"), [c[1:] for c in GOOD_CASES], ids=[c[0] for c in GOOD_CASES]
)
def test_good_config(tmp_path: Path, toml: str, attribute: str, expected: Any) -> None:
    config = _parse(toml, tmp_path, {**ENV, "TENANT_ENTITY": "tickets"})
    assert _attribute(config, attribute) == expected


def test_source_options_are_the_kinds_model_and_mapping_resolves(tmp_path: Path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "zoho.toml").write_text('extends = "zoho"\n')
    config = _parse(SOURCE + 'mapping = "maps/zoho.toml"\nentities = ["tickets", "calls"]\n', tmp_path)
    source = config.sources["main"]
    assert isinstance(source, SourceConfig)
    assert isinstance(source.options, CrmTestOptions)
    assert source.mapping == tmp_path / "maps" / "zoho.toml"
    assert source.entities == ["tickets", "calls"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///connector.db", "sqlite:///{dir}/connector.db"),
        ("sqlite:///data/store.db?timeout=10", "sqlite:///{dir}/data/store.db?timeout=10"),
    ],
)
def test_relative_sqlite_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    (tmp_path / "etc").mkdir()
    config_file = tmp_path / "etc" / "connector.toml"
    config_file.write_text(f'[store]\nurl = "{url}"\n')
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("etc/connector.toml"), environ={})
    assert config.store.url == expected.format(dir=tmp_path / "etc")
    assert config.path == Path("etc/connector.toml")


class TestSecrets:
    """A secret's value must not appear in any error text or repr, whatever else is wrong."""

    def _error_text(self, text: str, folder: Path) -> str:
        with pytest.raises(ConfigError) as caught:
            _parse(text, folder)
        return str(caught.value) + repr(caught.value) + repr(caught.value.problems)

    def test_not_in_errors_about_other_keys(self, tmp_path: Path) -> None:
        text = SOURCE + 'page_size = "many"\ncolor = "${CRM_SECRET}"\n[clinic]\nlanguage = "xx"\n'
        assert SECRET not in self._error_text(text, tmp_path)

    def test_not_in_type_error_of_the_secret_field(self, tmp_path: Path) -> None:
        text = '[sources.main]\nkind = "crm_test"\nclient_id = "id"\nclient_secret = 987654321\n'
        error = self._error_text(text, tmp_path)
        assert "sources.main.client_secret: expected a string" in error
        assert "987654321" not in error

    def test_not_in_constraint_error_of_the_secret_field(self, tmp_path: Path) -> None:
        text = '[sources.main]\nkind = "crm_test"\nclient_id = "id"\nclient_secret = "Tiny-9"\n'
        error = self._error_text(text, tmp_path)
        assert "sources.main.client_secret" in error
        assert "Tiny-9" not in error

    def test_not_in_a_validator_message_that_echoes_it(self, tmp_path: Path) -> None:
        secret = "has space Qw3rty-long"
        text = f'[sources.main]\nkind = "crm_test"\nclient_id = "id"\nclient_secret = "{secret}"\n'
        error = self._error_text(text, tmp_path)
        assert "sources.main.client_secret: must not contain spaces: **********" in error
        assert secret not in error

    def test_not_in_repr_or_str_of_the_config(self, tmp_path: Path) -> None:
        text = SOURCE + '[store]\nurl = "postgresql+psycopg://app:${PGPASSWORD}@db:5432/crm"\n'
        config = _parse(text, tmp_path)
        assert config.sources["main"].options.client_secret.get_secret_value() == SECRET
        assert PG_PASSWORD in config.store.url  # the store needs it to connect
        for shown in (repr(config), str(config), repr(config.store), str(config.sources["main"])):
            assert SECRET not in shown
            assert PG_PASSWORD not in shown
        assert "app:***@db" in repr(config.store)


def test_missing_file_names_path_and_init(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "connector.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: config file not found (looked at {path}); create one with `crm-connector init`"
    )


def test_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "connector.toml"
    path.write_bytes(b'[clinic]\nlanguage = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(path)


def test_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "connector.toml"
    path.write_text('\ufeff[clinic]\nlanguage = "en"\n', encoding="utf-8")
    assert load_config(path, environ={}).clinic.language == "en"


def test_uses_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_TEST_TZ", "Asia/Urumqi")
    path = tmp_path / "connector.toml"
    path.write_text('[clinic]\ntimezone = "${CRM_TEST_TZ}"\n')
    assert load_config(path).clinic.timezone == "Asia/Urumqi"


# --- the documented example -------------------------------------------------------------------------

EXAMPLE_ENV = {
    "ZOHO_CLIENT_ID": "1000.ABCDEF",
    "ZOHO_CLIENT_SECRET": "zoho-secret",
    "ZOHO_REFRESH_TOKEN": "1000.refresh.token",
    "SHARECRM_APP_ID": "FSAID_131a2b3",
    "SHARECRM_APP_SECRET": "sharecrm-secret",
    "SHARECRM_PERMANENT_CODE": "permanent-code",
    "SHARECRM_OPERATOR_OPEN_USER_ID": "FSUID_" + "0123456789abcdef" * 2,
}


def _write_example(folder: Path, text: str) -> Path:
    (folder / "demo-data").mkdir()
    path = folder / "connector.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_starter_config_is_the_example_file() -> None:
    example = REPO / "connector" / "data" / "config.example.toml"
    assert starter_config() == example.read_text(encoding="utf-8")
    assert (REPO / "config.example.toml").resolve() == example


def test_example_loads_with_documented_defaults(tmp_path: Path) -> None:
    config = load_config(_write_example(tmp_path, starter_config()), environ={})
    assert config == _parse('[sources.demo]\nkind = "jsonl"\npath = "demo-data"\n', tmp_path, {})
    assert config.sources["demo"].kind == "jsonl"
    assert config.clinic.calendar.hours == CalendarConfig().hours  # the file spells out the defaults


def test_example_with_every_optional_line_enabled_loads(tmp_path: Path) -> None:
    missing = {"zoho", "sharecrm"} - set(adapter.adapter_kinds())
    if missing:
        pytest.skip(f"adapters not registered yet: {', '.join(sorted(missing))}")
    (tmp_path / "zoho-overrides.toml").write_text('extends = "zoho"\n')
    enabled = re.sub(r"^#(?=[\[A-Za-z_])", "", starter_config(), flags=re.MULTILINE)
    config = load_config(_write_example(tmp_path, enabled), environ=EXAMPLE_ENV)
    assert set(config.sources) == {"demo", "zoho_main", "sharecrm_main"}
    assert config.clinic.calendar.holidays == [date(2026, 10, 8)]
    assert all(value not in repr(config) for value in ("zoho-secret", "sharecrm-secret"))


def _keys(model: type[BaseModel]) -> Iterator[str]:
    for name, field in model.model_fields.items():
        yield name
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _keys(field.annotation)


def test_example_documents_every_key() -> None:
    text = starter_config()
    common_source_keys = set(SourceConfig.model_fields) - {"name", "options"}
    keys = {*_keys(Config), *common_source_keys, *WEEKDAYS}
    assert {"store", "url", "clinic", "calendar", "hours", "makeup_day_hours", "kind", "entities"} <= keys
    for key in sorted(keys):
        pattern = rf"^#?(\[(\w+\.)*{key}(\.\w+)*\]|{key} = )"  # a key, or a segment of a table header
        assert re.search(pattern, text, flags=re.MULTILINE), f"{key!r} is not in the example config"


def test_models_construct_with_defaults_outside_a_file() -> None:
    # Other modules' tests build configs in code; no context means paths stay as written.
    config = Config(clinic=ClinicConfig(language="en"), store=StoreConfig(url="sqlite:///x.db"))
    assert config.store.url == "sqlite:///x.db"
    assert config.path == Path("connector.toml")
    assert config.clinic.calendar.makeup_day_hours == config.clinic.calendar.hours["mon"]
