"""`verify`: run the nine checks against a running stack (docs/verify.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import UsageError
from ..loading import load_settings
from ..runner.stack import resolve_state_dir
from ..runner.state import read_state, stack_file
from ..verify import VerifyOptions, run_verify
from ..verify.report import as_json, check_line, header, summary
from ..verify.target import DEFAULT_SQL


@click.command()
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Settings JSON (default: the one the local stack in --state-dir records).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The rendered superset_config.py the stack runs with (default: the local stack's).",
)
@click.option("--json", "as_json_output", is_flag=True, help="Print one JSON document instead of the report.")
@click.option(
    "--platform",
    type=click.Choice(["auto", "local", "systemd"]),
    default="auto",
    show_default=True,
    help="Where the stack runs: the local runner's stack.json, or systemd units on this host.",
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="The local runner's state dir (default: the settings' state_dir, else ./.superset-async-demo).",
)
@click.option(
    "--web-python",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Interpreter of the web's environment (default: the one beside the web's gunicorn).",
)
@click.option("--no-query", is_flag=True, help="Skip check 9 (the SQL Lab query and the GAQ round trip).")
@click.option(
    "--query-timeout",
    type=click.FloatRange(1, 3600),
    default=60.0,
    show_default=True,
    help="Seconds an async query may take before check 9 fails.",
)
@click.option("--sql", default=DEFAULT_SQL, show_default=True, help="The query run on each async database.")
def verify(  # noqa: PLR0917 - click passes each option as a parameter
    settings_path: Path,
    config_path: Path,
    as_json_output: bool,
    platform: str,
    state_dir: Path | None,
    web_python: Path | None,
    no_query: bool,
    query_timeout: float,
    sql: str,
) -> None:
    """Check services, Redis, workers, beat, Superset's effective config and an async query end to end.

    Exit 0: nothing failed (warnings and skips are listed); 1: a check failed (the diagnosis names
    the failure mode and its fix); 2: usage or configuration error.
    """
    if settings_path is None or config_path is None:
        settings_path, config_path = _from_local_stack(settings_path, config_path, state_dir)
    settings = load_settings(settings_path)
    options = VerifyOptions(
        settings_path=settings_path,
        config_path=config_path,
        platform=platform,  # type: ignore[arg-type]
        state_dir=state_dir.resolve() if state_dir else None,
        web_python=web_python,
        run_query=not no_query,
        query_timeout=query_timeout,
        sql=sql,
    )
    if as_json_output:
        report = run_verify(options, settings, lambda _result: None)
        click.echo(as_json(report))
    else:
        click.echo(header(str(settings_path), str(config_path)))
        report = run_verify(options, settings, lambda result: click.echo(check_line(result)))
        click.echo(summary(report))
    sys.exit(int(report.exit_code))


def _from_local_stack(
    settings_path: Path | None, config_path: Path | None, state_dir: Path | None
) -> tuple[Path, Path]:
    """--settings and --config default to what stack.json of the local runner records."""
    directory = resolve_state_dir(state_dir, settings_path)
    state = read_state(directory)
    if state is None:
        raise UsageError(
            f"give --settings and --config (NixOS: superset-async-verify passes both), or --state-dir of a stack "
            f"started by `superset-async up`; {stack_file(directory)} does not exist"
        )
    return settings_path or Path(state.settings), config_path or Path(state.config)
