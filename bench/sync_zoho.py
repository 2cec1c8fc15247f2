"""How fast and how lean a Zoho sync is, end to end: sandbox → adapter → mapping → SQLite.

    .venv/bin/python bench/sync_zoho.py [--records 50000] [--scale 2] [--change 0.01] [--profile]

Serves a synthetic clinic with N contacts and N cases from the Zoho sandbox in its own process (as a
real CRM would be: the connector shares no interpreter and no GIL with it), then, each in a fresh
process so that its peak RSS is its own:

1. the sandbox's ceiling: the same pages (same ``fields``, 200 per page, page tokens) fetched and
   JSON-parsed with bare ``requests``, nothing stored — once cold (the sandbox renders every record)
   and once warm (it serves its cached fragments, as it will to the connector, which reads next);
2. a full sync through the real engine (``runtime.build_source`` + ``sync.sync_source``) into a
   fresh SQLite store;
3. after the sandbox advanced a day with ``--change`` of the records created, modified or deleted,
   an incremental sync (the access token comes from the store).

Printed: records/s end to end, the ratio to the warm ceiling, API calls made against the minimum
(one call per 200 records per module plus the token; an incremental sync's minimum is one call per
200 changed records and one deletions call per module), and peak RSS (``ru_maxrss``; at start and
at the end of the phase). ``--scale 2`` repeats everything with 2N to show whether memory stays flat
as N doubles; ``--profile`` runs the full sync under cProfile and prints where its time goes.

Targets (issue 3): full sync ≥ 20,000 records/s and ≥ 1/3 of the sandbox ceiling; API calls within
1% of the minimum; peak RSS < 200 MB and flat when N doubles; incremental cost proportional to the
change.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

SCRIPT = Path(__file__).resolve()
ROOT = SCRIPT.parent.parent
sys.path.insert(0, str(ROOT))

SOURCE = "bench"
ENTITIES = ("contacts", "tickets")
SEED = 424242
NOW = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
PER_PAGE = 200
TARGET_RECORDS_PER_S = 20_000
TARGET_CEILING_SHARE = 1 / 3
TARGET_CALL_EXCESS = 0.01
TARGET_RSS_MB = 200
TARGET_RSS_GROWTH = 1.25  # "flat": peak RSS at 2N at most 25% above the peak at N


def pages(n: int) -> int:
    return max(1, math.ceil(n / PER_PAGE))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# ---- child processes ----------------------------------------------------------------------------


def serve(records: int) -> None:
    """The sandbox process: print its URL, then serve until terminated."""
    from connector.sandbox import create_app, generate_clinic, start_sandbox

    size = {"agents": 40, "contacts": records, "tickets": records, "follow_ups": 0, "calls": 0, "surveys": 0}
    clinic = generate_clinic(SEED, size, now=NOW)
    running = start_sandbox(create_app("zoho", clinic))
    print(json.dumps({"base_url": running.base_url}), flush=True)
    running.wait()


def ceiling(base_url: str) -> dict[str, Any]:
    """The sandbox's own speed: the connector's requests, parsed and thrown away."""
    from zoneinfo import ZoneInfo

    from adapters.zoho.pull import request_fields
    from connector.mapping import load_mapping
    from connector.sandbox.zoho import ZohoCredentials

    mappings = load_mapping("zoho", ZoneInfo("Asia/Shanghai")).entities
    session = requests.Session()
    credentials = ZohoCredentials()
    start = time.perf_counter()
    reply = session.post(
        f"{base_url}/oauth/v2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
            "refresh_token": credentials.refresh_token,
        },
        timeout=30,
    )
    headers = {"Authorization": "Zoho-oauthtoken " + reply.json()["access_token"]}
    fetched, calls = 0, 1
    for entity in ENTITIES:
        mapping = mappings[entity]
        params: dict[str, Any] = {
            "fields": ",".join(request_fields(list(mapping.fetch_fields))),
            "per_page": PER_PAGE,
            "sort_by": "Modified_Time",
            "sort_order": "asc",
        }
        while True:
            body = session.get(
                f"{base_url}/crm/v8/{mapping.object}", params=params, headers=headers, timeout=60
            ).json()
            calls += 1
            fetched += len(body["data"])
            if not body["info"]["more_records"]:
                break
            params["page_token"] = body["info"]["next_page_token"]
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "fetched": fetched, "calls": calls, "peak_rss_mb": peak_rss_mb()}


def sync(config_path: Path, profile: bool) -> dict[str, Any]:
    """One sync through the real engine, as ``crm-connector sync`` runs it."""
    from connector.clock import system_clock
    from connector.config import load_config
    from connector.runtime import build_source
    from connector.store import open_store
    from connector.sync import sync_source

    config = load_config(config_path)
    store = open_store(config.store.url)
    rss_start = peak_rss_mb()
    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    clock = system_clock()
    live = build_source(config, SOURCE, store, clock=clock)
    runs = sync_source(store, SOURCE, live.adapter, live.mappings, clock=clock)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - start
    store.dispose()
    out: dict[str, Any] = {
        "seconds": seconds,
        "runs": {run.entity: run.as_dict() for run in runs},
        "rss_start_mb": rss_start,
        "peak_rss_mb": peak_rss_mb(),
    }
    if profiler:
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
        out["profile"] = text.getvalue()
    return out


# ---- the orchestrating process ------------------------------------------------------------------


@contextmanager
def sandbox_process(records: int) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--role", "serve", "--records", str(records)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise SystemExit("the sandbox process exited before serving")
        yield json.loads(line)["base_url"]
    finally:
        process.terminate()
        process.wait(timeout=30)


def child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def admin(base_url: str, method: str, path: str, body: Any = None) -> Any:
    reply = requests.request(method, f"{base_url}/_admin/{path}", json=body, timeout=60)
    reply.raise_for_status()
    return reply.json()


def write_config(folder: Path, base_url: str) -> Path:
    from connector.sandbox.zoho import ZohoCredentials

    credentials = ZohoCredentials()
    path = folder / "connector.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{folder / "store.db"}"\n'
        '[clinic]\ntimezone = "Asia/Shanghai"\nlanguage = "en"\n'
        f"[sources.{SOURCE}]\n"
        'kind = "zoho"\n'
        f"entities = {json.dumps(list(ENTITIES))}\n"
        f'accounts_url = "{base_url}"\napi_domain = "{base_url}"\n'
        f'client_id = "{credentials.client_id}"\n'
        f'client_secret = "{credentials.client_secret}"\n'
        f'refresh_token = "{credentials.refresh_token}"\n',
        encoding="utf-8",
    )
    return path


def phase_calls(base_url: str) -> dict[str, int]:
    """Calls since the last reset, by endpoint; then reset."""
    calls = admin(base_url, "GET", "counters")["endpoints"]
    admin(base_url, "POST", "counters/reset")
    return calls


def measure(records: int, change: float, profile: bool) -> dict[str, Any]:
    """Every phase against one sandbox of ``records`` contacts and ``records`` cases."""
    total = 2 * records
    with sandbox_process(records) as base_url, tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), base_url)
        cold = child("--role", "ceiling", "--base-url", base_url)
        warm = child("--role", "ceiling", "--base-url", base_url)
        phase_calls(base_url)
        full = child("--role", "sync", "--config", str(config), *(["--profile"] if profile else []))
        full_calls = phase_calls(base_url)
        summary = admin(base_url, "POST", "advance", {"hours": 24, "change_share": change})
        incremental = child("--role", "sync", "--config", str(config))
        incremental_calls = phase_calls(base_url)
    fetched = sum(run["fetched"] for run in full["runs"].values())
    if fetched != total or cold["fetched"] != total:
        raise SystemExit(
            f"expected {total} records, the sync fetched {fetched}, the ceiling {cold['fetched']}"
        )
    counts = summary["counts"]
    changed = {e: counts[e]["created"] + counts[e]["modified"] for e in ENTITIES}
    gone = {e: counts[e]["soft_deleted"] + counts[e]["hard_deleted"] for e in ENTITIES}
    return {
        "records": total,
        "ceiling_cold": cold,
        "ceiling_warm": warm,
        "full": full,
        "full_calls": sum(full_calls.values()),
        "full_minimum": 1 + sum(pages(records) for _ in ENTITIES),
        "full_calls_by_endpoint": full_calls,
        "incremental": incremental,
        "incremental_calls": sum(incremental_calls.values()),
        "incremental_minimum": sum(pages(changed[e]) + pages(gone[e]) for e in ENTITIES),
        "incremental_calls_by_endpoint": incremental_calls,
        "changed": sum(changed.values()),
        "deleted": sum(gone.values()),
    }


def report(results: list[dict[str, Any]]) -> bool:
    """Print the numbers and the targets; True when every target is met."""
    checks: list[tuple[str, bool]] = []
    for r in results:
        n = r["records"]
        full, cold, warm, inc = r["full"], r["ceiling_cold"], r["ceiling_warm"], r["incremental"]
        rate = n / full["seconds"]
        ceiling_rate = n / warm["seconds"]
        excess = r["full_calls"] / r["full_minimum"] - 1
        inc_fetched = sum(run["fetched"] for run in inc["runs"].values())
        print(f"== {n:,} records ({n // 2:,} contacts + {n // 2:,} cases) → SQLite")
        print(f"  sandbox ceiling, cold   {n / cold['seconds']:>10,.0f} records/s  {cold['seconds']:7.2f} s")
        print(f"  sandbox ceiling, warm   {ceiling_rate:>10,.0f} records/s  {warm['seconds']:7.2f} s")
        print(
            f"  full sync               {rate:>10,.0f} records/s  {full['seconds']:7.2f} s"
            f"   = {rate / ceiling_rate:.2f} of the warm ceiling "
            f"({rate * cold['seconds'] / n:.2f} of the cold one)"
        )
        print(
            f"  API calls (full)        {r['full_calls']:>10,} made, minimum {r['full_minimum']:,} "
            f"(+{excess:.2%}): {json.dumps(r['full_calls_by_endpoint'])}"
        )
        added = full["peak_rss_mb"] - full["rss_start_mb"]
        print(
            f"  peak RSS (full sync)    {full['peak_rss_mb']:>10.1f} MB "
            f"(at start {full['rss_start_mb']:.1f} MB, the sync added {added:.1f} MB)"
        )
        print(
            f"  incremental             {r['changed']:,} changed + {r['deleted']:,} deleted; fetched "
            f"{inc_fetched:,} in {inc['seconds']:.2f} s; {r['incremental_calls']} calls, minimum "
            f"{r['incremental_minimum']} (no token call: reused from the store)"
        )
        print(f"  peak RSS (incremental)  {inc['peak_rss_mb']:>10.1f} MB")
        checks += [
            (f"{n:,}: full sync ≥ {TARGET_RECORDS_PER_S:,} records/s", rate >= TARGET_RECORDS_PER_S),
            (f"{n:,}: full sync ≥ 1/3 of the warm ceiling", rate >= TARGET_CEILING_SHARE * ceiling_rate),
            (f"{n:,}: API calls within 1% of the minimum", excess <= TARGET_CALL_EXCESS),
            (f"{n:,}: peak RSS < {TARGET_RSS_MB} MB", full["peak_rss_mb"] < TARGET_RSS_MB),
            (
                # one more page per module at most: the re-read overlap can cross a page boundary
                f"{n:,}: incremental calls proportional to the change",
                r["incremental_calls"] <= r["incremental_minimum"] + len(ENTITIES),
            ),
        ]
        if "profile" in full:
            print(full["profile"])
    if len(results) > 1:
        small, large = sorted(results, key=lambda r: r["records"])[:: len(results) - 1]
        growth = large["full"]["peak_rss_mb"] / small["full"]["peak_rss_mb"]
        print(
            f"== peak RSS {small['full']['peak_rss_mb']:.1f} MB at {small['records']:,} records, "
            f"{large['full']['peak_rss_mb']:.1f} MB at {large['records']:,}: x{growth:.2f}"
        )
        checks.append((f"peak RSS flat as N grows (≤ x{TARGET_RSS_GROWTH})", growth <= TARGET_RSS_GROWTH))
    print("\ntargets:")
    for label, met in checks:
        print(f"  {'met    ' if met else 'MISSED '} {label}")
    return all(met for _, met in checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000, help="contacts, and as many cases")
    parser.add_argument("--scale", type=float, default=None, help="also run with records × SCALE")
    parser.add_argument("--change", type=float, default=0.01, help="share changed before the incremental")
    parser.add_argument("--profile", action="store_true", help="cProfile the full sync")
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON too")
    parser.add_argument("--role", choices=["serve", "ceiling", "sync"], help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "serve":
        serve(args.records)
        return
    if args.role == "ceiling":
        print(json.dumps(ceiling(args.base_url)))
        return
    if args.role == "sync":
        print(json.dumps(sync(args.config, args.profile)))
        return
    sizes = [args.records]
    if args.scale:
        sizes.append(round(args.records * args.scale))
    results = [measure(n, args.change, args.profile) for n in sizes]
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    if not report(results):
        sys.exit(1)


if __name__ == "__main__":
    main()
