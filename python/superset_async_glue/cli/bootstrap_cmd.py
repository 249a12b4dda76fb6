"""`bootstrap`: migrations, init, admin and declared databases, idempotently (the NixOS init unit runs it).

Superset is imported only when the command runs, so `superset-async --help` stays fast.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..bootstrap import StepResult, run_bootstrap
from ..loading import load_settings
from .settings_cmds import settings_option


@click.command()
@settings_option
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The rendered superset_config.py (superset-async render).",
)
def bootstrap(settings_path: Path, config_path: Path) -> None:
    """Bring Superset's metadata DB to what the settings declare; a second run changes nothing.

    Prints one line per step (unchanged, created, updated, failed or skipped) and a summary.
    Exit 1 when a step failed (e.g. a database is unreachable); the other steps still run.
    """
    settings = load_settings(settings_path)
    started = time.monotonic()

    def emit(result: StepResult) -> None:
        click.echo(f"bootstrap: {result.line()}")

    report = run_bootstrap(settings, config_path.resolve(), emit)
    click.echo(f"{report.summary()} in {time.monotonic() - started:.1f}s")
    sys.exit(report.exit_code)
