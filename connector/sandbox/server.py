"""A small threaded HTTP server that hosts one CRM emulation ("app") over a synthetic clinic.

The framework knows nothing about any CRM. An app supplies routes — (method, path regex) → handler
returning a :class:`Response` — plus the CRM's own answers for a rate limit and a server error, a way
to invalidate its tokens, and its view of the clinic's truth. The framework adds what every sandbox
needs and tests rely on:

- per-endpoint call counters with arrival timestamps (``GET /_admin/counters[?window=20]`` gives
  the most calls any endpoint received within any 20 s), so tests can prove rate-limit compliance;
- deterministic faults (:mod:`connector.sandbox.faults`) switched by Python, CLI or
  ``POST /_admin/faults``; a dropped connection closes the socket without an answer;
- ``POST /_admin/advance {"hours": 24, "seed": 7, "change_share": 0.01}`` moves the clinic's clock
  and churns records; ``GET /_admin/state`` and ``GET /_admin/truth/<entity>`` describe the clinic.

One lock serialises requests and clinic changes: handlers are fast, and a sync client reads
sequentially anyway, so this costs nothing measurable and makes every read see a consistent clinic.
stdlib only (``http.server``), bound to 127.0.0.1 by default, HTTP/1.1 keep-alive.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import re
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from connector.sandbox.clinic import ENTITIES, ChangeSummary, Clinic, TruthRow
from connector.sandbox.faults import FaultError, Faults

JSON_TYPE = "application/json;charset=UTF-8"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    """A compact UTF-8 JSON answer (Chinese text stays readable, not \\u-escaped)."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, body, {"Content-Type": JSON_TYPE, **(headers or {})})


@dataclass(frozen=True)
class Request:
    """One HTTP request as handlers see it. ``query`` keeps the first value of each parameter;
    ``faults`` (for malformed records) and ``counters`` (for events) are the sandbox's own."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Message
    body: bytes
    base_url: str
    match: re.Match[str]
    faults: Faults
    counters: Counters

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        """Query parameters overlaid with a urlencoded body (OAuth servers accept either)."""
        values = dict(self.query)
        if self.body and "x-www-form-urlencoded" in (self.header("Content-Type") or ""):
            values.update(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        return values


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """``data`` routes are counted as data calls: faults apply to them (token endpoints are not)."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    data: bool = True


def route(method: str, pattern: str, handler: Handler, *, data: bool = True) -> Route:
    return Route(method.upper(), re.compile(pattern), handler, data)


class SandboxApp(Protocol):
    """What a CRM emulation provides to the framework."""

    name: str
    clinic: Clinic

    def routes(self) -> Sequence[Route]: ...

    def fault_response(self, fault: str) -> Response:
        """The CRM's answer for ``"rate_limit_burst"`` or ``"server_error"``."""
        ...

    def not_found(self, method: str, path: str) -> Response:
        """The CRM's answer for a path (or method) it does not serve."""
        ...

    def expire_tokens(self) -> None:
        """Invalidate every access token issued so far."""
        ...

    def state(self) -> dict[str, Any]:
        """CRM-specific facts for ``GET /_admin/state`` (tokens issued, records written …)."""
        ...

    def truth(self, entity: str) -> dict[str, TruthRow]:
        """Every record of a canonical entity keyed by the id this CRM shows for it."""
        ...

    def credentials(self) -> dict[str, str]:
        """The sandbox's fixed credentials, for the CLI to print."""
        ...

    def config_snippet(self, base_url: str, source: str) -> str:
        """A ready ``[sources.<source>]`` TOML block pointing at this sandbox."""
        ...


class Counters:
    """Calls per endpoint (``"GET /crm/v8/Contacts"``) with arrival times, statuses, and named events.

    Timestamps come from ``clock`` (monotonic seconds by default) so windows are real time, the
    time a CRM's rate limiter measures.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._times: dict[str, list[float]] = defaultdict(list)
        self._statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self._events: dict[str, int] = defaultdict(int)

    def arrive(self, endpoint: str) -> None:
        with self._lock:
            self._times[endpoint].append(self._clock())

    def answered(self, endpoint: str, status: int) -> None:
        """``status`` 0 means the connection was dropped without an answer."""
        with self._lock:
            self._statuses[endpoint][status] += 1

    def event(self, name: str, n: int = 1) -> None:
        """Count something that is not a call (e.g. workflow triggers a write set off)."""
        with self._lock:
            self._events[name] += n

    def count(self, endpoint: str | None = None) -> int:
        with self._lock:
            if endpoint is not None:
                return len(self._times.get(endpoint, ()))
            return sum(len(times) for times in self._times.values())

    def calls(self) -> dict[str, int]:
        with self._lock:
            return {endpoint: len(times) for endpoint, times in sorted(self._times.items())}

    def timestamps(self, endpoint: str) -> list[float]:
        with self._lock:
            return list(self._times.get(endpoint, ()))

    def recent(self, endpoint: str, seconds: float) -> int:
        """Calls to ``endpoint`` that arrived within the last ``seconds`` (the current call included):
        what a CRM's per-endpoint rate limiter looks at before answering."""
        with self._lock:
            times = self._times.get(endpoint, [])
            return len(times) - bisect.bisect_left(times, self._clock() - seconds)

    def events(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._events.items()))

    def statuses(self) -> dict[str, dict[int, int]]:
        with self._lock:
            return {endpoint: dict(sorted(s.items())) for endpoint, s in sorted(self._statuses.items())}

    def max_in_window(self, seconds: float) -> dict[str, int]:
        """Per endpoint, the most calls that arrived within any window of ``seconds`` (closed at the
        right end: calls at t and t + seconds count in one window, the strict reading of "per 20 s")."""
        out = {}
        with self._lock:
            for endpoint, times in sorted(self._times.items()):
                best, lo = 0, 0
                for hi, moment in enumerate(times):
                    while moment - times[lo] > seconds:
                        lo += 1
                    best = max(best, hi - lo + 1)
                out[endpoint] = best
        return out

    def reset(self) -> None:
        with self._lock:
            self._times.clear()
            self._statuses.clear()
            self._events.clear()

    def snapshot(self, window: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "total": self.count(),
            "endpoints": self.calls(),
            "statuses": {ep: {str(k): v for k, v in s.items()} for ep, s in self.statuses().items()},
            "events": self.events(),
        }
        if window is not None:
            out["window_seconds"] = window
            out["max_in_window"] = self.max_in_window(window)
        return out


_DROP = object()  # handler result: close the socket without answering


def _find(routes: Sequence[Route], method: str, path: str) -> tuple[Route, re.Match[str]] | None:
    for candidate in routes:
        match = candidate.pattern.fullmatch(path)
        if match is not None and candidate.method == method:
            return candidate, match
    return None


class _Dispatcher:
    """Routes a request to admin endpoints or the app, applying counters, faults and the lock."""

    def __init__(self, app: SandboxApp, faults: Faults, counters: Counters) -> None:
        self.app = app
        self.faults = faults
        self.counters = counters
        self.lock = threading.RLock()
        self.routes = list(app.routes())
        self.admin = [
            route("GET", r"/_admin/counters", self._counters),
            route("POST", r"/_admin/counters/reset", self._reset_counters),
            route("GET", r"/_admin/faults", self._get_faults),
            route("POST", r"/_admin/faults", self._set_faults),
            route("POST", r"/_admin/advance", self._advance),
            route("GET", r"/_admin/state", self._state),
            route("GET", r"/_admin/truth/(?P<entity>\w+)", self._truth),
        ]

    def dispatch(self, method: str, target: str, headers: Message, body: bytes, base_url: str) -> Any:
        parts = urlsplit(target)
        path = parts.path
        query: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            query.setdefault(key, value)
        if path.startswith("/_admin/"):
            found = _find(self.admin, method, path)
            if found is None:
                return json_response(404, {"error": f"no admin endpoint {method} {path}"})
            with self.lock:
                return found[0].handler(
                    Request(
                        method, path, query, headers, body, base_url, found[1], self.faults, self.counters
                    )
                )
        endpoint = f"{method} {path}"
        self.counters.arrive(endpoint)
        result = self._serve(method, path, query, headers, body, base_url)
        self.counters.answered(endpoint, 0 if result is _DROP else result.status)
        return result

    def _serve(
        self, method: str, path: str, query: dict[str, str], headers: Message, body: bytes, base_url: str
    ) -> Any:
        found = _find(self.routes, method, path)
        if found is None:
            return self.app.not_found(method, path)
        candidate, match = found
        if candidate.data:
            fault = self.faults.on_data_call()
            if fault == "drop_connection":
                return _DROP
            if fault is not None:
                return self.app.fault_response(fault)
        with self.lock:
            return candidate.handler(
                Request(method, path, query, headers, body, base_url, match, self.faults, self.counters)
            )

    # ---- admin endpoints -------------------------------------------------------------------

    def _counters(self, request: Request) -> Response:
        window = request.query.get("window")
        try:
            seconds = float(window) if window else None
        except ValueError:
            return json_response(400, {"error": "window must be a number of seconds"})
        return json_response(200, self.counters.snapshot(seconds))

    def _reset_counters(self, request: Request) -> Response:
        self.counters.reset()
        return json_response(200, {"ok": True})

    def _get_faults(self, request: Request) -> Response:
        return json_response(200, self.faults.snapshot())

    def _set_faults(self, request: Request) -> Response:
        try:
            spec = request.json()
            if not isinstance(spec, dict):
                raise FaultError("send a JSON object of fault switches")
            self.faults.configure(spec)
        except (ValueError, FaultError) as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(200, self.faults.snapshot())

    def _advance(self, request: Request) -> Response:
        try:
            spec = request.json() if request.body else {}
            delta = timedelta(
                days=float(spec.get("days", 0)),
                hours=float(spec.get("hours", 0)),
                minutes=float(spec.get("minutes", 0)),
                seconds=float(spec.get("seconds", 0)),
            )
            options = {k: spec[k] for k in ("change_share", "create_ratio", "delete_ratio") if k in spec}
            summary = self.advance(delta, rng_seed=spec.get("seed"), **options)
        except (ValueError, TypeError, AttributeError) as exc:
            return json_response(400, {"error": str(exc)})
        return json_response(200, summary.as_dict())

    def _state(self, request: Request) -> Response:
        return json_response(200, self.state())

    def _truth(self, request: Request) -> Response:
        entity = request.match["entity"]
        if entity not in ENTITIES:
            return json_response(404, {"error": f"unknown entity {entity!r}; known: {', '.join(ENTITIES)}"})
        rows = self.app.truth(entity)
        return json_response(
            200,
            {
                "entity": entity,
                "records": [
                    {
                        "id": record_id,
                        "created": row.created.isoformat(),
                        "modified": row.modified.isoformat(),
                        "deleted": row.deleted,
                        "deleted_at": row.deleted_at.isoformat() if row.deleted_at else None,
                    }
                    for record_id, row in rows.items()
                ],
            },
        )

    # ---- shared with the Python API --------------------------------------------------------

    def advance(self, delta: timedelta, **options: Any) -> ChangeSummary:
        with self.lock:
            return self.app.clinic.advance(delta, **options)

    def state(self) -> dict[str, Any]:
        with self.lock:
            clinic = self.app.clinic
            return {
                "crm": self.app.name,
                "clinic": clinic.name,
                "seed": clinic.seed,
                "start": clinic.start.isoformat(),
                "now": clinic.now.isoformat(),
                "version": clinic.version,
                "entities": clinic.counts(),
                "calls": self.counters.count(),
                "faults": self.faults.snapshot(),
                **self.app.state(),
            }


class _HTTPHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        result = self.server.dispatcher.dispatch(
            self.command, self.path, self.headers, body, self.server.base_url
        )
        if result is _DROP:
            self.close_connection = True
            return
        self.send_response(result.status)
        for name, value in result.headers.items():
            self.send_header(name, value)
        if result.status not in (204, 304):
            self.send_header("Content-Length", str(len(result.body)))
        self.end_headers()
        if result.status not in (204, 304) and result.body:
            self.wfile.write(result.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging: a bench makes thousands of calls."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], dispatcher: _Dispatcher) -> None:
        super().__init__(address, _HTTPHandler)
        self.dispatcher = dispatcher
        host, port = self.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections too, so a stopped sandbox answers nobody (tests rely on it)."""
        with self._connections_lock:
            open_sockets = list(self._connections)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class RunningSandbox:
    """A sandbox serving in a background thread. Use as a context manager, or call :meth:`stop`."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        dispatcher = server.dispatcher
        self.app: SandboxApp = dispatcher.app
        self.clinic: Clinic = dispatcher.app.clinic
        self.counters: Counters = dispatcher.counters
        self.faults: Faults = dispatcher.faults
        self.base_url: str = server.base_url
        self.port: int = server.server_address[1]
        self._dispatcher = dispatcher

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def advance(self, delta: timedelta | None = None, *, hours: float = 0, **options: Any) -> ChangeSummary:
        """Advance the clinic (``delta`` or ``hours``) while no request is being served."""
        return self._dispatcher.advance(delta if delta is not None else timedelta(hours=hours), **options)

    def state(self) -> dict[str, Any]:
        return self._dispatcher.state()

    def truth(self, entity: str) -> dict[str, TruthRow]:
        with self._dispatcher.lock:
            return self.app.truth(entity)

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C raises ``KeyboardInterrupt`` in the caller)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join()


def start_sandbox(
    app: SandboxApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    faults: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunningSandbox:
    """Serve ``app`` on ``host:port`` (0 = any free port) in a daemon thread and return at once."""
    fault_switches = Faults(on_expire=app.expire_tokens)
    if faults:
        fault_switches.configure(faults)
    server = _Server((host, port), _Dispatcher(app, fault_switches, Counters(clock)))
    thread = threading.Thread(target=server.serve_forever, name=f"sandbox-{app.name}", daemon=True)
    thread.start()
    return RunningSandbox(server, thread)
