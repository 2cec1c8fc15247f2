"""Local CRM sandboxes: a synthetic clinic served through emulations of the CRMs' APIs.

- :mod:`connector.sandbox.clinic`: the deterministic clinic generator and its evolution;
- :mod:`connector.sandbox.server`: the CRM-neutral HTTP framework (routing, counters, faults, admin);
- one module per CRM emulation, each exposing ``create_app(clinic, **options)``.

:data:`APPS` names the emulation module of each CRM; ``crm-connector sandbox --crm`` offers the
ones whose module is present, so a new emulation is one module plus one line here.
"""

from __future__ import annotations

import importlib
import importlib.util
import typing
from collections.abc import Iterable
from typing import Any

from connector.sandbox.clinic import Clinic, generate_clinic
from connector.sandbox.options import SandboxOptionError, parse_app_options
from connector.sandbox.server import RunningSandbox, SandboxApp, start_sandbox

#: CRM name → module defining ``create_app(clinic, **options) -> SandboxApp``.
APPS: dict[str, str] = {
    "zoho": "connector.sandbox.zoho",
    "sharecrm": "connector.sandbox.sharecrm",
}


def available_crms() -> list[str]:
    """CRMs whose emulation module is installed, in :data:`APPS` order."""
    return [name for name, module in APPS.items() if importlib.util.find_spec(module) is not None]


def _factory(crm: str) -> Any:
    if crm not in available_crms():
        raise KeyError(f"no sandbox for {crm!r}; available: {', '.join(available_crms())}")
    return importlib.import_module(APPS[crm]).create_app


def create_app(crm: str, clinic: Clinic, **options: Any) -> SandboxApp:
    """The ``crm`` emulation serving ``clinic``."""
    return _factory(crm)(clinic, **options)


def app_options(crm: str, items: Iterable[str]) -> dict[str, Any]:
    """``NAME=VALUE`` settings for ``crm``'s app, checked against the class its ``create_app``
    returns (see :mod:`connector.sandbox.options`); raises ``SandboxOptionError``."""
    app_class = typing.get_type_hints(_factory(crm))["return"]
    return parse_app_options(app_class, items)


__all__ = [
    "APPS",
    "Clinic",
    "RunningSandbox",
    "SandboxApp",
    "SandboxOptionError",
    "app_options",
    "available_crms",
    "create_app",
    "generate_clinic",
    "start_sandbox",
]
