"""``crm-connector sandbox --option NAME=VALUE``: which settings exist, conversion, clear refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from connector.cli import sandbox_cmd
from connector.cli.context import AppContext
from connector.sandbox import SandboxOptionError, app_options
from connector.sandbox.server import RunningSandbox


def test_settings_are_converted_by_the_fields_type() -> None:
    assert app_options("sharecrm", ["daily_quota=500", "invalid_visible=false", "rate_limit_window_s=2"]) == {
        "daily_quota": 500,
        "invalid_visible": False,
        "rate_limit_window_s": 2.0,
    }
    assert app_options("sharecrm", ["daily_quota=none"]) == {"daily_quota": None}
    assert app_options("zoho", ["picklist_language=zh", "discrete_limit=500"]) == {
        "picklist_language": "zh",
        "discrete_limit": 500,
    }


@pytest.mark.parametrize(
    ("crm", "item", "message"),
    [
        ("sharecrm", "daily_quota=lots", "daily_quota: expected an integer or none, got 'lots'"),
        ("sharecrm", "invalid_visible=maybe", "invalid_visible: expected true or false, got 'maybe'"),
        ("sharecrm", "rate_limit_window_s=fast", "rate_limit_window_s: expected a number, got 'fast'"),
        ("sharecrm", "daily_quota", "'daily_quota': expected NAME=VALUE"),
        ("sharecrm", "dailyquota=5", "unknown option 'dailyquota'; this sandbox has: call_object, daily"),
        ("zoho", "clinic=x", "unknown option 'clinic'"),  # not a plain setting: never offered
        ("zoho", "token_clock=1", "unknown option 'token_clock'"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(crm: str, item: str, message: str) -> None:
    with pytest.raises(SandboxOptionError) as caught:
        app_options(crm, [item])
    assert message in str(caught.value)


def test_cli_serves_a_sharecrm_sandbox_with_a_daily_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def drive(running: RunningSandbox) -> None:
        seen["quota"] = running.app.daily_quota
        seen["state"] = requests.get(f"{running.base_url}/_admin/state", timeout=5).json()

    monkeypatch.setattr(sandbox_cmd, "serve_until_interrupted", drive)
    context = AppContext(config_path="missing.toml", as_json=True)
    result = CliRunner().invoke(
        sandbox_cmd.sandbox, ["--crm", "sharecrm", "--option", "daily_quota=50"], obj=context
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["options"] == {"daily_quota": 50}
    assert seen["quota"] == 50 and seen["state"]["crm"] == "sharecrm"

    human = CliRunner().invoke(
        sandbox_cmd.sandbox,
        ["--crm", "sharecrm", "--option", "daily_quota=50"],
        obj=AppContext(config_path="missing.toml", lang_override="zh"),
    )
    assert human.exit_code == 0 and "模拟参数：daily_quota=50" in human.output

    bad = CliRunner().invoke(sandbox_cmd.sandbox, ["--crm", "zoho", "--option", "daily_quota=5"], obj=context)
    assert bad.exit_code == 2 and "unknown option 'daily_quota'" in bad.output
    refused = CliRunner().invoke(
        sandbox_cmd.sandbox, ["--crm", "zoho", "--option", "picklist_language=fr"], obj=context
    )
    assert refused.exit_code == 2 and "Invalid --option: picklist_language must be one of" in refused.output
