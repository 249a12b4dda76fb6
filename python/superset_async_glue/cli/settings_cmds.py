"""`render`, `check` and `schema`: settings in, validated output or a precise error out."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click

from ..loading import load_settings, settings_digest
from ..render import render_config
from ..settings import Settings

settings_option = click.option(
    "--settings",
    "settings_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Settings JSON (see docs/settings.md).",
)


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Replace `path` in one step, so a reader never sees half a file and a failure leaves the old one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.command()
@settings_option
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write superset_config.py ('-' for standard output).")
def render(settings_path: Path, output: Path) -> None:
    """Render superset_config.py from the settings (same settings, same bytes)."""
    text = render_config(load_settings(settings_path))
    if str(output) == "-":
        click.echo(text, nl=False)
    else:
        write_atomically(output, text)


@click.command()
@settings_option
def check(settings_path: Path) -> None:
    """Validate the settings; exit 2 with every problem listed when they are invalid."""
    settings = load_settings(settings_path)
    click.echo(f"{settings_path}: valid (sha256 {settings_digest(settings)})")


@click.command()
def schema() -> None:
    """Print the settings' JSON Schema."""
    click.echo(json.dumps(Settings.model_json_schema(), indent=2, sort_keys=True))
