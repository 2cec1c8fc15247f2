"""``crm-connector demo``: the whole pipeline that exists, on a fresh machine with no credentials.

It writes a config into a work folder, points a ``jsonl`` source at the bundled sample clinic (a few
hundred records per entity, some deliberately malformed), syncs it, and prints the sync summary and
``status`` — so an admin sees the quarantine at work before touching a real CRM.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import click

from connector.cli.admin import print_status, status_data
from connector.cli.context import AppContext
from connector.cli.sync_cmd import print_runs, run_sync
from connector.i18n import tr

MESSAGES = {
    "intro": {
        "en": "Demo workspace: {workdir} (config {config}, store {store})",
        "zh": "演示目录：{workdir}（配置 {config}，本地库 {store}）",
    },
    "step_sync": {
        "en": "== Sync: bundled sample clinic (jsonl) ==",
        "zh": "== 同步：内置示例卫生院数据（jsonl）==",
    },
    "step_status": {"en": "== Status ==", "zh": "== 状态 =="},
}

DEMO_CONFIG = """\
# Written by `crm-connector demo`. Safe to delete; it is recreated on each run.
[store]
url = "sqlite:///demo.db"

[clinic]
timezone = "Asia/Shanghai"
language = "{lang}"

[sources.sample_clinic]
kind = "jsonl"
path = "sample-clinic"
"""


def sample_clinic_folder() -> Path:
    return Path(str(resources.files("connector").joinpath("samples", "clinic")))


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
    """Run the whole pipeline against built-in sample data and print the results."""
    lang = app.lang_override or "zh"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    shutil.copytree(sample_clinic_folder(), workdir / "sample-clinic")
    config_path = workdir / "connector.toml"
    config_path.write_text(DEMO_CONFIG.format(lang=lang), encoding="utf-8")
    app.config_path = str(config_path)
    app.console.print(
        tr(MESSAGES, "intro", lang, workdir=workdir, config=config_path, store=workdir / "demo.db")
    )
    app.console.print(tr(MESSAGES, "step_sync", lang))
    runs = run_sync(app, None, (), full=False)
    print_runs(app, runs)
    app.console.print(tr(MESSAGES, "step_status", lang))
    print_status(app, status_data(app))


COMMANDS = [demo]
