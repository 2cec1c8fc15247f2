"""``crm-connector demo``: the whole pipeline that exists, on a fresh machine with no credentials.

It starts the built-in sandbox CRMs on 127.0.0.1 (each serving its own synthetic clinic, with a few
deliberately malformed records), writes a config for them into a work folder, and runs the pipeline
against it exactly as an admin would: sync every source into one store, then print the sync summary
and ``status`` — so the quarantine is seen at work before a real CRM is touched — and finally push
back: alerts delivered as CRM tasks and scorecards written into each sandbox CRM, with what each CRM
then holds.
"""

from __future__ import annotations

import csv
import random
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC
from importlib import resources
from pathlib import Path

import click
import sqlalchemy as sa
from rich.table import Table
from rich.text import Text

from connector.assessments import import_assessments
from connector.cli import alerts_cmd, metrics_cmd
from connector.cli.admin import print_status, status_data
from connector.cli.context import AppContext, ExitCode
from connector.cli.push_cmd import print_push
from connector.cli.sync_cmd import print_runs, run_sync
from connector.delivery import deliver_alerts
from connector.i18n import tr
from connector.push import run_push
from connector.push.planner import PlannedRecord
from connector.push.run import record_push_run
from connector.sandbox import RunningSandbox, available_crms, create_app, generate_clinic, start_sandbox
from connector.store.schema import agents

MESSAGES = {
    "intro": {
        "en": "Demo workspace: {workdir} (config {config}, store {store})",
        "zh": "演示目录：{workdir}（配置 {config}，本地库 {store}）",
    },
    "sandbox": {
        "en": "Sandbox {crm} CRM at {url}: {clinic}, {tickets} tickets, {malformed} malformed records",
        "zh": "模拟 {crm} CRM：{url}，{clinic}，{tickets} 张工单，{malformed} 条异常记录",
    },
    "step_sync": {
        "en": "== Sync: every source into one store ==",
        "zh": "== 同步：所有数据源写入同一本地库 ==",
    },
    "step_status": {"en": "== Status ==", "zh": "== 状态 =="},
    "assessments": {
        "en": "Imported {count} exam and QA-audit scores for {source} from {file}",
        "zh": "已为 {source} 导入 {count} 条考核与抽检成绩（{file}）",
    },
    "step_metrics": {
        "en": "== Scorecards: this month, by the clinic's policy ==",
        "zh": "== 绩效考核表：本月，按卫生院考核办法计算 ==",
    },
    "step_alerts": {"en": "== Open alerts ==", "zh": "== 未关闭的预警 =="},
    "step_push": {
        "en": "== Push back: alerts and scorecards into the CRMs ==",
        "zh": "== 回写：预警与绩效考核表写入 CRM ==",
    },
    "delivered": {
        "en": "Alerts: {delivered} delivered, {closed} closed, {delivery_failed} failed, "
        "{delivery_deferred} waiting for the next run",
        "zh": "预警：已送达 {delivered} 条，已关闭 {closed} 条，失败 {delivery_failed} 条，"
        "{delivery_deferred} 条待下次运行",
    },
    "crm_holds": {
        "en": "Sandbox {crm} CRM now holds, written by the connector: {held}",
        "zh": "模拟 {crm} CRM 中由连接器写入的记录：{held}",
    },
    "failed": {"en": "The demo's sync failed; see the errors above.", "zh": "演示同步失败，请查看上方错误。"},
}

SAMPLE_ROWS, SAMPLE_FIELDS = 3, 6  # of the scorecard records written, shown per CRM
DEMO_ASSESSMENT_SEED = 2026
DEMO_SEEDS = {"zoho": 7, "sharecrm": 11}
MALFORMED_SHARE = 0.01

CONFIG_HEAD = """\
# Written by `crm-connector demo`; recreated on each run. The sources point at sandbox CRMs that
# the demo started on 127.0.0.1 and stopped again when it finished.
[store]
url = "sqlite:///demo.db"

[clinic]
timezone = "Asia/Shanghai"
language = "{lang}"
"""


def sample_clinic_folder() -> Path:
    """The bundled sample clinic for the ``jsonl`` kind (see connector.sandbox.jsonl_export)."""
    return Path(str(resources.files("connector").joinpath("samples", "clinic")))


@contextmanager
def demo_sandboxes(app: AppContext, lang: str) -> Iterator[dict[str, RunningSandbox]]:
    """One running sandbox per available CRM, each with its own clinic (two health centres)."""
    now = app.clock().astimezone(UTC)
    with ExitStack() as stack:
        running = {}
        for crm in available_crms():
            clinic = generate_clinic(DEMO_SEEDS.get(crm, 1), "small", now=now)
            sandbox = stack.enter_context(start_sandbox(create_app(crm, clinic)))
            sandbox.faults.configure({"malformed": MALFORMED_SHARE})
            running[crm] = sandbox
            app.console.print(
                tr(
                    MESSAGES,
                    "sandbox",
                    lang,
                    crm=crm,
                    url=sandbox.base_url,
                    clinic=clinic.name,
                    tickets=len(clinic.tickets),
                    malformed=f"{MALFORMED_SHARE:.0%}",
                )
            )
        yield running


#: Kinds a clinic imports from its exam and QA systems (design.md: assessments do not live in the CRM).
DEMO_ASSESSMENT_KINDS = ("knowledge_exam", "policy_exam", "accuracy_audit", "politeness_audit")


def import_demo_assessments(app: AppContext, workdir: Path) -> None:
    """Write this month's exam and audit sheet per source, as a clinic would export it, and import it
    through the real importer — so the demo's scorecards have all three categories."""
    tz, now = app.config.clinic.tz, app.clock()
    assessed_at = now.astimezone(tz).date().replace(day=1).isoformat()
    rng = random.Random(DEMO_ASSESSMENT_SEED)
    for source in app.config.sources:
        with app.store.connect() as conn:
            agent_ids = (
                conn.execute(
                    sa.select(agents.c.external_id)
                    .where(
                        agents.c.source == source, agents.c.active.is_(True), agents.c.deleted_at.is_(None)
                    )
                    .order_by(agents.c.external_id)
                )
                .scalars()
                .all()
            )
        path = workdir / f"assessments-{source}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["agent", "kind", "score", "assessed_at", "assessor"])
            for agent_id in agent_ids:
                for kind in DEMO_ASSESSMENT_KINDS:
                    writer.writerow([agent_id, kind, rng.randint(70, 100), assessed_at, "质控科"])
        result = import_assessments(app.store, path, tz=tz, now=now, source=source)
        app.console.print(
            tr(
                MESSAGES,
                "assessments",
                app.lang,
                count=result.inserted + result.updated,
                source=source,
                file=path.name,
            )
        )


@click.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".demo"),
    show_default=True,
    help="Folder for the demo's config and store (recreated).",
)
@click.pass_obj
def demo(app: AppContext, workdir: Path) -> None:
    """Run the whole pipeline against built-in sandbox CRMs and print the results."""
    lang = app.lang
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    config_path = workdir / "connector.toml"
    with demo_sandboxes(app, lang) as sandboxes:
        sections = [CONFIG_HEAD.format(lang=lang)]
        sections += [s.app.config_snippet(s.base_url, f"{crm}_demo") for crm, s in sandboxes.items()]
        config_path.write_text("\n".join(sections), encoding="utf-8")
        app.config_path = str(config_path)
        app.console.print(
            tr(MESSAGES, "intro", lang, workdir=workdir, config=config_path, store=workdir / "demo.db")
        )
        app.console.print(tr(MESSAGES, "step_sync", lang))
        runs = run_sync(app, None, (), full=False)
        print_runs(app, runs)
        app.console.print(tr(MESSAGES, "step_status", lang))
        print_status(app, status_data(app))
        import_demo_assessments(app, workdir)
        context = click.get_current_context()
        app.console.print(tr(MESSAGES, "step_metrics", lang))
        context.invoke(metrics_cmd.metrics)
        app.console.print(tr(MESSAGES, "step_alerts", lang))
        context.invoke(alerts_cmd.alerts)
        pushed = push_back(app, sandboxes)
    if any(r.status != "success" for r in runs) or not pushed:
        app.fail(tr(MESSAGES, "failed", lang), ExitCode.JOB_FAILED)


def push_back(app: AppContext, sandboxes: dict[str, RunningSandbox]) -> bool:
    """The last step: alerts delivered and scorecards written into the sandbox CRMs, then what each
    CRM now holds that the connector wrote. False if a write failed."""
    lang = app.lang
    app.console.print(tr(MESSAGES, "step_push", lang))
    delivery = deliver_alerts(app.store, app.config, clock=app.clock)
    app.console.print(tr(MESSAGES, "delivered", lang, **delivery.counts()))
    for outcome in delivery.outcomes:
        if outcome.error:
            app.console.print(f"  {outcome.fingerprint} {outcome.channel}: {outcome.error}", markup=False)
    started = app.clock()
    report = run_push(app.store, app.config, clock=app.clock)
    record_push_run(app.store, report, started=started, finished=app.clock())
    print_push(app, report)
    for target in report.targets:
        print_sample(app, target.plan.records[:SAMPLE_ROWS])
    for crm, sandbox in sandboxes.items():
        written = {name: n for name, n in sandbox.state().get("written", {}).items() if n}
        held = ", ".join(f"{name} {n}" for name, n in written.items()) or "-"
        app.console.print(tr(MESSAGES, "crm_holds", lang, crm=crm, held=held), markup=False)
    return report.ok


def print_sample(app: AppContext, records: list[PlannedRecord]) -> None:
    """A few of the records just written, with their first fields as the CRM received them."""
    if not records:
        return
    first = records[0]
    # the agent fields repeat what the record key (the first field) already says
    fields = [
        name
        for name, value in first.values.items()
        if value != first.agent_id and not isinstance(value, dict)
    ]
    fields = fields[:SAMPLE_FIELDS]
    table = Table()
    for name in fields:
        table.add_column(name)
    for record in records:
        table.add_row(*(Text(_shown(record.values.get(name))) for name in fields))
    app.console.print(table)


def _shown(value: object) -> str:
    return "—" if value is None else str(value)


COMMANDS = [demo]
