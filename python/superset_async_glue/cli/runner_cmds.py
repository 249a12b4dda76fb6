"""`up`, `down`, `status`, `stop-role` and `start-role`: the local runner (docs/runner.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import UsageError
from ..loading import load_settings
from ..runner.stack import (
    DEFAULT_STATE_DIR,
    control_role,
    demo_settings_path,
    down,
    resolve_state_dir,
    status,
    up,
)
from ..runner.state import ROLE_ORDER, make_private
from ..runner.supervisor import RestartPolicy, UpOptions
from ..secret_files import require_deployable

_DEFAULT_POLICY = RestartPolicy()

_settings = click.option(
    "--settings",
    "settings_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Settings JSON; without it, the embedded demo's settings in the state dir.",
)
_state_dir = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help=f"Runner state (logs, run/stack.json, data). Default: the settings' state_dir, "
    f"or ./{DEFAULT_STATE_DIR} for the demo.",
)


def _say(line: str) -> None:
    click.echo(line)


@click.command(name="up")
@_settings
@_state_dir
@click.option("--detach", is_flag=True, help="Return once the stack is ready; stop it later with `down`.")
@click.option(
    "--clickhouse",
    type=click.Choice(["auto", "none"]),
    default="auto",
    show_default=True,
    help="auto: start a local ClickHouse for the first declared ClickHouse database on a loopback "
    "address; none: every database is external.",
)
@click.option(
    "--clickhouse-spare-port",
    type=int,
    default=None,
    help="The local ClickHouse port its URI does not fix (native TCP for clickhousedb://). Default: a free port.",
)
@click.option("--web-port", type=int, help="Demo only, when its settings are generated (default 8088).")
@click.option("--redis-port", type=int, help="Demo only, when its settings are generated (default 6380).")
@click.option(
    "--clickhouse-port",
    type=int,
    help="Demo only, when its settings are generated: the ClickHouse HTTP port (default 8124).",
)
@click.option(
    "--timeout",
    type=float,
    default=180,
    show_default=True,
    help="Seconds each of web and worker may take to become ready.",
)
@click.option(
    "--restart-delay",
    type=click.FloatRange(min=0.1),
    default=_DEFAULT_POLICY.delay,
    show_default=True,
    help="Seconds before a role that exited is started again; doubled at each exit within the interval.",
)
@click.option(
    "--restart-max-delay",
    type=click.FloatRange(min=0.1),
    default=_DEFAULT_POLICY.max_delay,
    show_default=True,
    help="The longest delay before a restart.",
)
@click.option(
    "--start-limit-burst",
    type=click.IntRange(min=1),
    default=_DEFAULT_POLICY.burst,
    show_default=True,
    help="A role that exits this many times within --start-limit-interval is marked failed, not restarted.",
)
@click.option(
    "--start-limit-interval",
    type=click.FloatRange(min=1),
    default=_DEFAULT_POLICY.interval,
    show_default=True,
    help="Seconds over which --start-limit-burst counts exits.",
)
def up_cmd(  # noqa: PLR0917 - click passes each option as a parameter
    settings_path: Path | None,
    state_dir: Path | None,
    detach: bool,
    clickhouse: str,
    clickhouse_spare_port: int | None,
    web_port: int | None,
    redis_port: int | None,
    clickhouse_port: int | None,
    timeout: float,
    restart_delay: float,
    restart_max_delay: float,
    start_limit_burst: int,
    start_limit_interval: float,
) -> None:
    """Start Redis, ClickHouse (demo), bootstrap, web, Celery worker and beat; wait until all are ready.

    Foreground by default: Ctrl-C or SIGTERM stops everything. Without --settings, runs the embedded
    demo from ./.superset-async-demo (generated secrets, SQLite metadata, a seeded ClickHouse table).
    """
    if settings_path is not None:  # refused with every problem listed, before anything starts
        require_deployable(load_settings(settings_path), str(settings_path), missing_ok=False)
    directory = resolve_state_dir(state_dir, settings_path)
    make_private(directory)
    if settings_path is None:
        settings_path = demo_settings_path(directory, web_port or 8088, redis_port or 6380, clickhouse_port or 8124)
    elif web_port or redis_port or clickhouse_port:
        raise UsageError(
            "--web-port, --redis-port and --clickhouse-port apply to the demo only; with --settings, "
            "set web.port, redis.port and the database URI's port in the settings"
        )
    options = UpOptions(
        settings_path=settings_path.resolve(),
        state_dir=directory,
        clickhouse="none" if clickhouse == "none" else "auto",
        clickhouse_spare_port=clickhouse_spare_port,
        timeout=timeout,
        detached=detach,
        restart=RestartPolicy(
            restart_delay, max(restart_delay, restart_max_delay), start_limit_burst, start_limit_interval
        ),
    )
    sys.exit(up(options, _say))


@click.command(name="down")
@_settings
@_state_dir
def down_cmd(settings_path: Path | None, state_dir: Path | None) -> None:
    """Stop a stack started with `up --detach` (or a foreground one from another terminal)."""
    sys.exit(down(resolve_state_dir(state_dir, settings_path), _say))


@click.command(name="status")
@_settings
@_state_dir
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_cmd(settings_path: Path | None, state_dir: Path | None, as_json: bool) -> None:
    """Each role's state. Exit 0: all running; 1: some role is not running; 3: the stack is not running."""
    sys.exit(status(resolve_state_dir(state_dir, settings_path), _say, as_json))


# A SQL Lab lane's worker is worker-NAME (sql_lab.lanes); control_role names the stack's roles otherwise.
_role = click.argument("role", metavar=f"{{{'|'.join(ROLE_ORDER)}|worker-LANE}}")
_wait = click.option(
    "--timeout", type=float, default=120, show_default=True, help="Seconds to wait for the supervisor to do it."
)


@click.command(name="stop-role")
@_role
@_settings
@_state_dir
@_wait
def stop_role_cmd(role: str, settings_path: Path | None, state_dir: Path | None, timeout: float) -> None:
    """Stop one role of a running stack and keep it stopped (no restart) until `start-role`."""
    sys.exit(control_role(resolve_state_dir(state_dir, settings_path), role, "stop", _say, timeout))


@click.command(name="start-role")
@_role
@_settings
@_state_dir
@_wait
def start_role_cmd(role: str, settings_path: Path | None, state_dir: Path | None, timeout: float) -> None:
    """Start a role stopped by `stop-role` or failed (start limit hit) again, with a fresh start limit."""
    sys.exit(control_role(resolve_state_dir(state_dir, settings_path), role, "start", _say, timeout))
