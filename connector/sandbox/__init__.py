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
from typing import Any

from connector.sandbox.clinic import Clinic, generate_clinic
from connector.sandbox.server import RunningSandbox, SandboxApp, start_sandbox

#: CRM name → module defining ``create_app(clinic, **options) -> SandboxApp``.
APPS: dict[str, str] = {
    "zoho": "connector.sandbox.zoho",
    "sharecrm": "connector.sandbox.sharecrm",
}


def available_crms() -> list[str]:
    """CRMs whose emulation module is installed, in :data:`APPS` order."""
    return [name for name, module in APPS.items() if importlib.util.find_spec(module) is not None]


def create_app(crm: str, clinic: Clinic, **options: Any) -> SandboxApp:
    """The ``crm`` emulation serving ``clinic``."""
    if crm not in available_crms():
        raise KeyError(f"no sandbox for {crm!r}; available: {', '.join(available_crms())}")
    module = importlib.import_module(APPS[crm])
    return module.create_app(clinic, **options)


__all__ = [
    "APPS",
    "Clinic",
    "RunningSandbox",
    "SandboxApp",
    "available_crms",
    "create_app",
    "generate_clinic",
    "start_sandbox",
]
