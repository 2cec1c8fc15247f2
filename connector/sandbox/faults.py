"""Switchable, deterministic faults for the CRM sandboxes.

Faults are counts, never probabilities, so a test that switches on "the next 3 calls get 429" sees
exactly that on every run. They apply to *data calls* (routes an app marks as data; token and admin
endpoints are exempt), in a fixed order per call: a pending token expiry fires first, then a dropped
connection, then a rate-limit answer, then a server error. Each fault consumes one count per call.

Malformed records are chosen by a stable hash of the CRM record id (or listed explicitly), so the
same records are broken on every read while the fault is on; the app decides how its CRM's records
break (missing id, unparsable date, unknown picklist value).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Fault names accepted by :meth:`Faults.configure`, the CLI (``--fault NAME=N``) and the admin API.
FAULT_NAMES: tuple[str, ...] = (
    "rate_limit_burst",
    "server_error",
    "drop_connection",
    "expire_tokens",
    "malformed",
)
#: Ways a malformed record can be broken; apps fall back to the next kind their CRM can express.
MALFORMATIONS: tuple[str, ...] = ("missing_id", "bad_date", "bad_picklist")
#: Per-call actions :meth:`Faults.on_data_call` can return (the fault names of answered faults).
CALL_FAULTS: tuple[str, ...] = ("drop_connection", "rate_limit_burst", "server_error")


class FaultError(ValueError):
    """A fault specification that cannot be applied (unknown name, negative count, bad share)."""


@dataclass(frozen=True)
class Malformed:
    """Which records render malformed: a share of all ids (by hash), explicit ids, or both."""

    share: float = 0.0
    ids: frozenset[str] = frozenset()
    kind: str | None = None  # force one kind; else chosen per record by hash

    def kind_for(self, record_id: str) -> str | None:
        """The malformation of ``record_id``, or None when it renders normally."""
        digest = zlib.crc32(record_id.encode())
        if record_id not in self.ids and (digest % 10_000) >= round(self.share * 10_000):
            return None
        return self.kind or MALFORMATIONS[(digest // 10_000) % len(MALFORMATIONS)]

    @property
    def active(self) -> bool:
        return self.share > 0 or bool(self.ids)


@dataclass
class Faults:
    """The sandbox's fault switches. Thread-safe; ``on_expire`` invalidates the app's tokens."""

    on_expire: Callable[[], None] = lambda: None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CALL_FAULTS, 0))
    expire_after: int | None = None
    malformed: Malformed = field(default_factory=Malformed)
    fired: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*CALL_FAULTS, "expire_tokens"), 0))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def configure(self, spec: Mapping[str, Any]) -> None:
        """Merge ``spec`` into the switches; ``{"reset": true}`` first clears them all.

        Counts: ``rate_limit_burst``, ``server_error``, ``drop_connection`` = next N data calls;
        ``expire_tokens`` = invalidate all tokens after N more data calls (0 = now);
        ``malformed`` = a share (0–1), a list of ids, or ``{"share", "ids", "kind"}``.
        """
        unknown = set(spec) - {*FAULT_NAMES, "reset"}
        if unknown:
            raise FaultError(
                f"unknown fault(s) {', '.join(sorted(unknown))}; known: {', '.join(FAULT_NAMES)}"
            )
        expire_now = False
        with self._lock:
            if spec.get("reset"):
                self.counts = dict.fromkeys(CALL_FAULTS, 0)
                self.expire_after, self.malformed = None, Malformed()
            for name in CALL_FAULTS:
                if name in spec:
                    self.counts[name] = _count(name, spec[name])
            if "expire_tokens" in spec:
                after = _count("expire_tokens", spec["expire_tokens"])
                expire_now = after == 0
                self.expire_after = None if expire_now else after
            if "malformed" in spec:
                self.malformed = _malformed(spec["malformed"])
        if expire_now:
            self._expire()

    def reset(self) -> None:
        self.configure({"reset": True})

    def on_data_call(self) -> str | None:
        """Account for one data call: fire a due token expiry; return the fault to answer with, if any."""
        expire = False
        action = None
        with self._lock:
            if self.expire_after is not None:
                if self.expire_after == 0:
                    self.expire_after, expire = None, True
                else:
                    self.expire_after -= 1
            for name in CALL_FAULTS:
                if self.counts[name] > 0:
                    self.counts[name] -= 1
                    self.fired[name] += 1
                    action = name
                    break
        if expire:
            self._expire()
        return action

    def malformation(self, record_id: str) -> str | None:
        """How the record with this CRM id is broken right now (None: render it normally)."""
        malformed = self.malformed
        return malformed.kind_for(record_id) if malformed.active else None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pending": dict(self.counts),
                "expire_tokens_after": self.expire_after,
                "malformed": {
                    "share": self.malformed.share,
                    "ids": sorted(self.malformed.ids),
                    "kind": self.malformed.kind,
                },
                "fired": dict(self.fired),
            }

    def _expire(self) -> None:
        with self._lock:
            self.fired["expire_tokens"] += 1
        self.on_expire()


def parse_fault_options(options: Iterable[str]) -> dict[str, Any]:
    """``["rate_limit_burst=3", "malformed=0.02", "malformed=id1,id2"]`` → a spec for ``configure``."""
    spec: dict[str, Any] = {}
    for option in options:
        name, sep, value = option.partition("=")
        name = name.strip()
        if not sep or name not in FAULT_NAMES:
            raise FaultError(f"expected NAME=VALUE with NAME one of {', '.join(FAULT_NAMES)}, got {option!r}")
        if name == "malformed":
            try:
                spec[name] = float(value)
            except ValueError:
                spec[name] = [item.strip() for item in value.split(",") if item.strip()]
        else:
            try:
                spec[name] = int(value)
            except ValueError:
                raise FaultError(f"{name} needs a whole number of calls, got {value!r}") from None
    return spec


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FaultError(f"{name} needs a count ≥ 0, got {value!r}")
    return value


def _malformed(value: Any) -> Malformed:
    if isinstance(value, bool):
        raise FaultError("malformed needs a share, a list of ids or an object")
    if isinstance(value, int | float):
        value = {"share": value}
    elif isinstance(value, list):
        value = {"ids": value}
    if not isinstance(value, Mapping) or set(value) - {"share", "ids", "kind"}:
        raise FaultError('malformed needs a share, a list of ids or {"share", "ids", "kind"}')
    share = value.get("share", 0.0)
    ids = value.get("ids", [])
    kind = value.get("kind")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise FaultError(f"malformed share must be between 0 and 1, got {share!r}")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise FaultError("malformed ids must be a list of record id strings")
    if kind is not None and kind not in MALFORMATIONS:
        raise FaultError(f"malformed kind must be one of {', '.join(MALFORMATIONS)}")
    return Malformed(float(share), frozenset(ids), kind)
