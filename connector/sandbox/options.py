"""``crm-connector sandbox --option NAME=VALUE``: the emulations' plain settings from the command line.

Each emulation's app is a dataclass; its fields of a plain type (a number, a flag, a name, or a
number that may be ``none``) are what an admin may want to change to try the connector against a
harsher CRM — a small ShareCRM daily quota, queries that hide invalidated rows, Chinese Zoho
picklists — without writing Python. Fields of other types (the clinic, clocks, credentials) are not
offered.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_NONE = {"none", "null", ""}


class SandboxOptionError(ValueError):
    """A ``--option`` the emulation does not have, or a value of the wrong type."""


def _plain(hint: Any) -> tuple[type, bool] | None:
    """``(type, may be None)`` for a plain field type, else ``None``."""
    if hint in (int, float, bool, str):
        return hint, False
    args = typing.get_args(hint)
    if len(args) == 2 and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return (inner, True) if inner in (int, float, str) else None
    return None


def settable_options(app_class: type) -> dict[str, tuple[type, bool]]:
    """The settable fields of an emulation's app class, by name."""
    hints = typing.get_type_hints(app_class)
    found = {}
    for item in dataclasses.fields(app_class):
        plain = _plain(hints.get(item.name)) if item.init and item.name != "name" else None
        if plain is not None:
            found[item.name] = plain
    return found


def _convert(name: str, text: str, kind: type, nullable: bool) -> Any:
    """``text`` (already stripped) as a value of ``kind``."""
    word = text.lower()
    if nullable and word in _NONE:
        return None
    if kind is bool:
        if word in _TRUE | _FALSE:
            return word in _TRUE
        raise SandboxOptionError(f"{name}: expected true or false, got {text!r}")
    if kind is str:
        return text
    try:
        return kind(text)
    except ValueError:
        expected = ("an integer" if kind is int else "a number") + (" or none" if nullable else "")
        raise SandboxOptionError(f"{name}: expected {expected}, got {text!r}") from None


def parse_app_options(app_class: type, items: typing.Iterable[str]) -> dict[str, Any]:
    """``NAME=VALUE`` items as keyword arguments for the app class, each checked and converted."""
    known = settable_options(app_class)
    options: dict[str, Any] = {}
    for item in items:
        name, equals, text = item.partition("=")
        name = name.strip()
        if not equals:
            raise SandboxOptionError(f"{item!r}: expected NAME=VALUE")
        if name not in known:
            raise SandboxOptionError(f"unknown option {name!r}; this sandbox has: {', '.join(sorted(known))}")
        options[name] = _convert(name, text.strip(), *known[name])
    return options
