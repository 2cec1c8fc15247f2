"""``crm-connector sandbox``: serve a CRM emulation over a synthetic clinic on 127.0.0.1 until Ctrl-C.

No config file is needed (the sandbox is how a fresh machine tries the connector), so the language
comes from ``--lang``, else the config when one exists, else English.
"""

from __future__ import annotations

from pathlib import Path

import click

from connector.cli.context import AppContext, ExitCode
from connector.i18n import tr
from connector.sandbox import (
    SandboxOptionError,
    app_options,
    available_crms,
    create_app,
    generate_clinic,
    start_sandbox,
)
from connector.sandbox.faults import FaultError, parse_fault_options
from connector.sandbox.server import RunningSandbox

CATALOG = {
    "serving": {
        "en": "{crm} sandbox for {clinic} is serving at {url}   (Ctrl-C to stop)",
        "zh": "{crm} 沙箱（{clinic}）已启动：{url}   （按 Ctrl-C 停止）",
    },
    "data": {
        "en": "Synthetic clinic (seed {seed}, size {size}): {agents} agents, {contacts} patients, "
        "{tickets} tickets, {follow_ups} follow-ups, {calls} calls, {surveys} surveys; clock at {now}",
        "zh": "模拟诊所（种子 {seed}，规模 {size}）：客户经理 {agents} 人，患者 {contacts} 人，"
        "工单 {tickets} 张，回访 {follow_ups} 次，通话 {calls} 次，满意度调查 {surveys} 份；当前时钟 {now}",
    },
    "credentials": {
        "en": "Sandbox credentials (test values that work only here):",
        "zh": "沙箱凭据（仅在本沙箱有效的测试值）：",
    },
    "snippet": {"en": "Config snippet for connector.toml:", "zh": "可直接加入 connector.toml 的配置："},
    "faults": {"en": "Faults switched on: {faults}", "zh": "已开启的故障：{faults}"},
    "admin": {
        "en": 'Admin: GET {url}/_admin/state | POST {url}/_admin/advance {{"hours": 24}} | '
        "POST {url}/_admin/faults | GET {url}/_admin/counters",
        "zh": '管理接口：GET {url}/_admin/state | POST {url}/_admin/advance {{"hours": 24}}（推进时钟）| '
        "POST {url}/_admin/faults（故障开关）| GET {url}/_admin/counters（调用计数）",
    },
    "stopped": {"en": "Sandbox stopped.", "zh": "沙箱已停止。"},
    "bad_fault": {"en": "Invalid --fault: {error}", "zh": "--fault 参数无效：{error}"},
    "bad_option": {"en": "Invalid --option: {error}", "zh": "--option 参数无效：{error}"},
    "options": {"en": "Options: {options}", "zh": "模拟参数：{options}"},
    "port_busy": {"en": "Cannot listen on {host}:{port}: {error}", "zh": "无法监听 {host}:{port}：{error}"},
}


@click.command("sandbox")
@click.option("--crm", type=click.Choice(available_crms()), required=True, help="Which CRM API to emulate.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=0, show_default=True, help="Port (0 = any free port).")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the synthetic clinic.")
@click.option(
    "--size",
    type=click.Choice(["small", "medium", "large"]),
    default="small",
    show_default=True,
    help="Clinic size.",
)
@click.option(
    "--fault",
    "fault_options",
    multiple=True,
    metavar="NAME=N",
    help="Switch a fault on: rate_limit_burst=N, server_error=N, drop_connection=N, expire_tokens=N, "
    "malformed=SHARE or malformed=ID,ID (repeatable).",
)
@click.option(
    "--option",
    "app_settings",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set the emulation: e.g. daily_quota=500, invalid_visible=false (ShareCRM), "
    "picklist_language=zh (Zoho); an unknown name lists the ones there are (repeatable).",
)
@click.option(
    "--source", default=None, help="Source name in the printed config snippet (default: the CRM name)."
)
@click.pass_obj
def sandbox(
    ctx: AppContext,
    crm: str,
    host: str,
    port: int,
    seed: int,
    size: str,
    fault_options: tuple[str, ...],
    app_settings: tuple[str, ...],
    source: str | None,
) -> None:
    """Serve a local CRM sandbox seeded with a synthetic clinic (Ctrl-C to stop)."""
    lang = ctx.lang_override or (ctx.lang if Path(ctx.config_path).exists() else "en")
    try:
        faults = parse_fault_options(fault_options)
    except FaultError as exc:
        ctx.fail(tr(CATALOG, "bad_fault", lang, error=exc), ExitCode.USAGE)
    try:
        options = app_options(crm, app_settings)
    except SandboxOptionError as exc:
        ctx.fail(tr(CATALOG, "bad_option", lang, error=exc), ExitCode.USAGE)
    clinic = generate_clinic(seed, size, now=ctx.clock().replace(microsecond=0))
    try:
        app = create_app(crm, clinic, **options)
    except ValueError as exc:  # a value of the right type the emulation still refuses
        ctx.fail(tr(CATALOG, "bad_option", lang, error=exc), ExitCode.USAGE)
    try:
        running = start_sandbox(app, host, port, faults=faults)
    except OSError as exc:
        ctx.fail(tr(CATALOG, "port_busy", lang, host=host, port=port, error=exc), ExitCode.JOB_FAILED)
    counts = {entity: tally["live"] for entity, tally in clinic.counts().items()}
    snippet = app.config_snippet(running.base_url, source or crm)
    data = {
        "crm": crm,
        "base_url": running.base_url,
        "port": running.port,
        "clinic": {"name": clinic.name, "seed": seed, "size": size, "now": clinic.now.isoformat(), **counts},
        "credentials": app.credentials(),
        "config": snippet,
        "faults": faults,
        "options": options,
    }

    def human() -> None:
        echo = click.echo
        echo(tr(CATALOG, "serving", lang, crm=crm, clinic=clinic.name, url=running.base_url))
        echo(tr(CATALOG, "data", lang, seed=seed, size=size, now=clinic.now.isoformat(), **counts))
        if faults:
            echo(tr(CATALOG, "faults", lang, faults=", ".join(f"{k}={v}" for k, v in faults.items())))
        if options:
            echo(tr(CATALOG, "options", lang, options=", ".join(f"{k}={v}" for k, v in options.items())))
        echo(tr(CATALOG, "credentials", lang))
        for key, value in app.credentials().items():
            echo(f"  {key} = {value}")
        echo(tr(CATALOG, "snippet", lang))
        echo(snippet)
        echo(tr(CATALOG, "admin", lang, url=running.base_url))

    ctx.emit(data, human)
    try:
        serve_until_interrupted(running)
    finally:
        running.stop()
        if not ctx.as_json:
            click.echo(tr(CATALOG, "stopped", lang), err=True)


def serve_until_interrupted(running: RunningSandbox) -> None:
    """Block until Ctrl-C (tests replace this to drive the sandbox and return)."""
    try:
        running.wait()
    except KeyboardInterrupt:
        return


COMMANDS = [sandbox]
