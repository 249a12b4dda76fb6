"""The `superset-async` command: thin wrappers that turn arguments into typed calls."""

from __future__ import annotations

import sys

import click

from ..errors import GlueError
from .bootstrap_cmd import bootstrap
from .exec_cmd import exec_role
from .init_cmd import init_settings
from .runner_cmds import down_cmd, start_role_cmd, status_cmd, stop_role_cmd, up_cmd
from .settings_cmds import check, render, schema, settings_doc
from .verify_cmd import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="superset-async-glue")
def cli() -> None:
    """Configure, run and verify Apache Superset's async query stack."""


for command in (
    init_settings,
    render,
    check,
    schema,
    settings_doc,
    exec_role,
    bootstrap,
    up_cmd,
    down_cmd,
    status_cmd,
    stop_role_cmd,
    start_role_cmd,
    verify,
):
    cli.add_command(command)


def main() -> None:
    try:
        cli(standalone_mode=False)
    except GlueError as err:
        click.echo(f"superset-async: {err}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(2)
