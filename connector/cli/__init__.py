"""``crm-connector``: the admin's command line.

Each command lives in its own module under ``connector/cli/`` and is added to :data:`main` here.
Exit codes: 0 success, 1 a job failed, 2 usage or configuration error. Human output by default,
``--json`` for scripts; staff-facing text in zh or en (``--lang``, else ``[clinic] language``).
"""

from __future__ import annotations

import logging
import sys

import click

from connector.cli.context import AppContext, ExitCode


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    envvar="CRM_CONNECTOR_CONFIG",
    default="connector.toml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="TOML config file (env CRM_CONNECTOR_CONFIG).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None, help="Language of messages.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="clinic-crm-connector")
@click.pass_context
def main(ctx: click.Context, config_path: str, as_json: bool, lang: str | None, verbose: int) -> None:
    """Sync a clinic's CRM (Zoho CRM, ShareCRM) into SQL, score staff, push results back."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = AppContext(config_path=config_path, as_json=as_json, lang_override=lang)


def _register() -> None:
    from connector.cli import admin, sync_cmd

    for module in (admin, sync_cmd):
        for command in module.COMMANDS:
            main.add_command(command)
    for optional in (
        "demo_cmd",
        "sandbox_cmd",
        "metrics_cmd",
        "alerts_cmd",
        "import_cmd",
        "push_cmd",
        "run_cmd",
    ):
        try:
            module = __import__(f"connector.cli.{optional}", fromlist=["COMMANDS"])
        except ModuleNotFoundError as exc:
            if exc.name != f"connector.cli.{optional}":
                raise
            continue
        for command in module.COMMANDS:
            main.add_command(command)


_register()

__all__ = ["ExitCode", "main"]
