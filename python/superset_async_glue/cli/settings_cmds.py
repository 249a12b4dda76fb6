"""`render`, `check` and `schema`: settings in, validated output or a precise error out."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..files import write_atomically
from ..loading import load_settings, settings_digest
from ..render import render_config
from ..render_flower import render_flower_config
from ..secret_files import require_deployable, require_valid_secret_files
from ..settings import Settings

settings_option = click.option(
    "--settings",
    "settings_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Settings JSON (see docs/settings.md).",
)


@click.command()
@settings_option
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write superset_config.py ('-' for standard output).",
)
@click.option("--flower", is_flag=True, help="Render Flower's flowerconfig.py (its --conf file) instead.")
def render(settings_path: Path, output: Path, flower: bool) -> None:
    """Render superset_config.py from the settings (same settings, same bytes).

    Secret files that exist here are checked; missing ones are allowed (a Nix build has none).
    """
    settings = load_settings(settings_path)
    require_valid_secret_files(settings, str(settings_path), missing_ok=True)
    text = render_flower_config(settings) if flower else render_config(settings)
    if str(output) == "-":
        click.echo(text, nl=False)
    else:
        write_atomically(output, text)


@click.command()
@settings_option
@click.option("--skip-secret-files", is_flag=True, help="Do not require the secret files to exist here.")
def check(settings_path: Path, skip_secret_files: bool) -> None:
    """Validate the settings, their secret files and Redis access control; exit 2 with every problem listed."""
    settings = load_settings(settings_path)
    require_deployable(settings, str(settings_path), missing_ok=skip_secret_files)
    click.echo(f"{settings_path}: valid (sha256 {settings_digest(settings)})")


@click.command(name="settings-doc")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the Markdown settings reference here instead of standard output.",
)
def settings_doc(output: Path | None) -> None:
    """Print the settings reference (docs/settings-reference.md) generated from the models."""
    from ..settings_doc import settings_reference  # noqa: PLC0415 (only this command needs it)

    text = settings_reference()
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomically(output, text)


@click.command()
def schema() -> None:
    """Print the settings' JSON Schema."""
    click.echo(json.dumps(Settings.model_json_schema(), indent=2, sort_keys=True))
