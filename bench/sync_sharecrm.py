"""How fast and how lean a ShareCRM sync is, end to end: sandbox → adapter → mapping → SQLite.

    .venv/bin/python bench/sync_sharecrm.py [--records 50000] [--scale 0.2] [--change 0.01] [--real-waits]

Serves a synthetic clinic with N contacts (ContactObj) and N work orders (CasesObj) from the
ShareCRM sandbox in its own process, then runs each sync in a fresh process (so its peak RSS is its
own) through the real engine (``runtime.build_source`` + ``sync.sync_source``) into SQLite:

1. a full sync;
2. after the sandbox advanced an hour with ``--change`` of the records created, modified,
   invalidated or deleted: an incremental sync (no id scan is due yet);
3. an id scan on its own (``id_scan_interval_hours = 0``), the daily cost of finding hard deletes.

ShareCRM allows 100 calls per endpoint per 20 s, so a 50,000 + 50,000 sync must spend ~200 s
waiting for the limiter. By default the bench does not sit through those waits: the connector's
sleep is virtual (its clock moves on by the time slept, so the limiter's arithmetic is the real
one) and the sandbox does not enforce the limit. Printed are records/s both without the limiter's
waits (wall time) and with them (wall time + waits: what a real tenant sees). ``--real-waits``
really waits, against a sandbox that enforces 100 calls per 20 s, and checks from the sandbox's
counters that no endpoint ever got more.

Also printed: API calls against the minimum (one query per 100 records per object; the token,
operator, employee and department calls are listed apart), and peak RSS (``ru_maxrss``).
``--scale 0.2`` repeats everything with 0.2 N to show whether memory stays flat in N.

Targets (issue 4): API calls within 1% of the minimum; peak RSS < 200 MB and flat in N;
incremental cost proportional to the change.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SOURCE = "bench"
OBJECTS = {"contacts": "ContactObj", "tickets": "CasesObj"}
QUERY = "POST /cgi/crm/v2/data/query"
SEED = 20261031
NOW = datetime(2026, 10, 31, 2, 0, tzinfo=UTC)
PAGE = 100
TARGET_CALL_EXCESS = 0.01
TARGET_RSS_MB = 200
TARGET_RSS_GROWTH = 1.25  # "flat": peak RSS at the larger N at most 25% above the smaller one


def pages(n: int) -> int:
    return math.ceil(n / PAGE)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# ---- child processes ----------------------------------------------------------------------------


def serve(records: int, real_waits: bool) -> None:
    """The sandbox process: print its URL and the operator's mobile, then serve until terminated."""
    from connector.sandbox import create_app, generate_clinic, start_sandbox

    size = {"agents": 120, "contacts": records, "tickets": records, "follow_ups": 0, "calls": 0, "surveys": 0}
    clinic = generate_clinic(SEED, size, now=NOW)
    limit = {} if real_waits else {"rate_limit_calls": 10**9}
    running = start_sandbox(create_app("sharecrm", clinic, **limit))
    print(json.dumps({"base_url": running.base_url, **running.app.credentials()}), flush=True)
    running.wait()


def sync(config_path: Path, now: datetime, real_waits: bool) -> dict[str, Any]:
    """One sync through the real engine, as ``crm-connector sync`` runs it, on a clock that starts
    at the clinic's now (the sandbox stamps changes in clinic time)."""
    from connector.config import load_config
    from connector.runtime import build_source
    from connector.store import open_store
    from connector.sync import sync_source

    waited = [0.0]
    origin = time.perf_counter()

    def clock() -> datetime:
        return now + timedelta(seconds=time.perf_counter() - origin + (0 if real_waits else waited[0]))

    def sleep(seconds: float) -> None:
        waited[0] += seconds
        if real_waits:
            time.sleep(seconds)

    config = load_config(config_path)
    store = open_store(config.store.url)
    rss_start = peak_rss_mb()
    start = time.perf_counter()
    live = build_source(config, SOURCE, store, clock=clock, sleep=sleep)
    runs = sync_source(store, SOURCE, live.adapter, live.mappings, clock=clock)
    seconds = time.perf_counter() - start
    limiter_wait = live.adapter.limiter_wait_s  # type: ignore[attr-defined]
    store.dispose()
    return {
        "seconds": seconds if not real_waits else seconds - limiter_wait,
        "limiter_wait_s": limiter_wait,
        "other_wait_s": waited[0] - limiter_wait,
        "runs": {run.entity: run.as_dict() for run in runs},
        "rss_start_mb": rss_start,
        "peak_rss_mb": peak_rss_mb(),
    }


# ---- the orchestrating process ------------------------------------------------------------------


@contextmanager
def sandbox_process(records: int, real_waits: bool) -> Iterator[dict[str, str]]:
    args = [sys.executable, __file__, "--role", "serve", "--records", str(records)]
    process = subprocess.Popen(
        [*args, *(["--real-waits"] if real_waits else [])], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise SystemExit("the sandbox process exited before serving")
        yield json.loads(line)
    finally:
        process.terminate()
        process.wait(timeout=30)


def child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def admin(base_url: str, method: str, path: str, body: Any = None) -> Any:
    reply = requests.request(method, f"{base_url}/_admin/{path}", json=body, timeout=120)
    reply.raise_for_status()
    return reply.json()


def write_config(folder: Path, sandbox: dict[str, str], scan_hours: float) -> Path:
    path = folder / "connector.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{folder / "store.db"}"\n'
        '[clinic]\ntimezone = "Asia/Shanghai"\nlanguage = "en"\n'
        f"[sources.{SOURCE}]\n"
        'kind = "sharecrm"\n'
        f"entities = {json.dumps(['agents', *OBJECTS])}\n"
        f'base_url = "{sandbox["base_url"]}"\n'
        f'app_id = "{sandbox["app_id"]}"\n'
        f'app_secret = "{sandbox["app_secret"]}"\n'
        f'permanent_code = "{sandbox["permanent_code"]}"\n'
        f'operator_mobile = "{sandbox["operator_mobile"]}"\n'
        f"id_scan_interval_hours = {scan_hours}\n",
        encoding="utf-8",
    )
    return path


def phase(base_url: str, config: Path, now: datetime, real_waits: bool) -> dict[str, Any]:
    """One sync child, with the sandbox's count of the calls it made (by endpoint)."""
    admin(base_url, "POST", "counters/reset")
    result = child(
        "--role",
        "sync",
        "--config",
        str(config),
        "--now",
        now.isoformat(),
        *(["--real-waits"] if real_waits else []),
    )
    counters = admin(base_url, "GET", "counters?window=20")
    result["calls"] = counters["endpoints"]
    result["max_in_20s"] = max(counters["max_in_window"].values(), default=0)
    return result


def measure(records: int, change: float, real_waits: bool) -> dict[str, Any]:
    with sandbox_process(records, real_waits) as sandbox, tempfile.TemporaryDirectory() as tmp:
        base_url = sandbox["base_url"]
        config = write_config(Path(tmp), sandbox, 24)
        full = phase(base_url, config, NOW, real_waits)
        summary = admin(base_url, "POST", "advance", {"hours": 1, "change_share": change})
        later = datetime.fromisoformat(summary["end"])
        incremental = phase(base_url, config, later, real_waits)
        scan = phase(base_url, write_config(Path(tmp), sandbox, 0), later, real_waits)
    fetched = sum(run["fetched"] for e, run in full["runs"].items() if e in OBJECTS)
    if fetched != 2 * records:
        raise SystemExit(f"expected {2 * records} records, the full sync fetched {fetched}")
    counts = summary["counts"]
    return {
        "records": records,
        "full": full,
        "incremental": incremental,
        "scan": scan,
        "changed": {e: sum(counts[e].values()) for e in OBJECTS},
    }


def _line(label: str, records: int, result: dict[str, Any]) -> str:
    wall, waits = result["seconds"], result["limiter_wait_s"]
    return (
        f"  {label:<22}{records / wall:>9,.0f} records/s without limiter waits ({wall:6.1f} s), "
        f"{records / (wall + waits):>7,.0f} with them (+{waits:5.1f} s)"
    )


def report(results: list[dict[str, Any]], real_waits: bool) -> bool:
    """Print the numbers and the targets; True when every target is met."""
    checks: list[tuple[str, bool]] = []
    for r in results:
        n = r["records"]
        full, inc, scan = r["full"], r["incremental"], r["scan"]
        queries = full["calls"].get(QUERY, 0)
        minimum = 2 * pages(n)
        overhead = {k: v for k, v in full["calls"].items() if k != QUERY}
        excess = queries / minimum - 1
        print(f"== {2 * n:,} records ({n:,} contacts + {n:,} work orders) → SQLite")
        print(_line("full sync", 2 * n, full))
        print(
            f"  API calls (full)      {queries:,} queries, minimum {minimum:,} (+{excess:.2%}); "
            f"besides: {json.dumps(overhead)}"
        )
        added = full["peak_rss_mb"] - full["rss_start_mb"]
        print(
            f"  peak RSS (full sync)  {full['peak_rss_mb']:.1f} MB "
            f"(at start {full['rss_start_mb']:.1f} MB, +{added:.1f})"
        )
        changed = sum(r["changed"].values())
        inc_fetched = sum(run["fetched"] for e, run in inc["runs"].items() if e in OBJECTS)
        inc_queries = inc["calls"].get(QUERY, 0)
        inc_minimum = sum(pages(c) for c in r["changed"].values())
        print(_line("incremental", max(inc_fetched, 1), inc))
        print(
            f"  incremental           {changed:,} changed ({change_text(r)}); fetched {inc_fetched:,} with "
            f"{inc_queries} queries (minimum {inc_minimum}); all calls {json.dumps(inc['calls'])}"
        )
        print(_line("id scan", 2 * n, scan))
        print(f"  id scan               {scan['calls'].get(QUERY, 0)} queries for {2 * n:,} ids")
        print(
            f"  peak RSS              incremental {inc['peak_rss_mb']:.1f} MB, "
            f"id scan {scan['peak_rss_mb']:.1f} MB"
        )
        if real_waits:
            worst = max(full["max_in_20s"], inc["max_in_20s"], scan["max_in_20s"])
            print(f"  most calls to one endpoint in any 20 s: {worst}")
            checks.append((f"{n:,}: at most 100 calls per endpoint per 20 s", worst <= 100))
        checks += [
            (
                f"{n:,}: API calls within 1% of the minimum",
                queries <= minimum * (1 + TARGET_CALL_EXCESS) + 1e-9,
            ),
            (
                f"{n:,}: peak RSS < {TARGET_RSS_MB} MB",
                max(full["peak_rss_mb"], scan["peak_rss_mb"]) < TARGET_RSS_MB,
            ),
            (
                # one more page per object at most: the re-read overlap can cross a page boundary
                f"{n:,}: incremental queries proportional to the change",
                inc_queries <= inc_minimum + len(OBJECTS),
            ),
        ]
    if len(results) > 1:
        small, large = sorted(results, key=lambda r: r["records"])[:: len(results) - 1]
        growth = large["full"]["peak_rss_mb"] / small["full"]["peak_rss_mb"]
        print(
            f"== peak RSS {small['full']['peak_rss_mb']:.1f} MB at {2 * small['records']:,} records, "
            f"{large['full']['peak_rss_mb']:.1f} MB at {2 * large['records']:,}: x{growth:.2f}"
        )
        checks.append((f"peak RSS flat in N (≤ x{TARGET_RSS_GROWTH})", growth <= TARGET_RSS_GROWTH))
    print("\ntargets:")
    for label, met in checks:
        print(f"  {'met    ' if met else 'MISSED '} {label}")
    return all(met for _, met in checks)


def change_text(result: dict[str, Any]) -> str:
    return ", ".join(f"{e} {c}" for e, c in result["changed"].items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="contacts, and as many work orders")
    parser.add_argument("--scale", type=float, default=None, help="also run with records × SCALE")
    parser.add_argument("--change", type=float, default=0.01, help="share changed before the incremental")
    parser.add_argument("--real-waits", action="store_true", help="really wait for the limiter (slow)")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    parser.add_argument("--role", choices=["serve", "sync"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "serve":
        serve(args.records, args.real_waits)
        return
    if args.role == "sync":
        print(json.dumps(sync(args.config, datetime.fromisoformat(args.now), args.real_waits)))
        return
    sizes = [args.records]
    if args.scale:
        sizes.append(round(args.records * args.scale))
    results = [measure(n, args.change, args.real_waits) for n in sizes]
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    if not report(results, args.real_waits):
        sys.exit(1)


if __name__ == "__main__":
    main()
