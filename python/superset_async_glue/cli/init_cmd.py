"""`init-settings`: a commented starting settings file, and the secret files it names, never overwriting."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import click

from ..errors import UsageError
from ..loading import parse_settings
from ..profiles import PROFILES, Profile, starting_settings
from ..secret_io import write_private
from ..settings import secret_files


@click.command(name="init-settings")
@click.option("--profile", type=click.Choice(PROFILES), default="single", show_default=True, help="Shape of the stack.")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("superset-async.json"),
    show_default=True,
    help="The settings file to write; its secrets go to secrets/ beside it.",
)
def init_settings(profile: Profile, output: Path) -> None:
    """Write a commented starting settings file for PROFILE and generate its missing secret files (0600).

    Refuses to overwrite anything: an existing settings file is an error, an existing secret file is kept.
    """
    output = output.absolute()
    if output.exists():
        raise UsageError(f"{output} exists; init-settings never overwrites a file: choose another --output")
    secrets_dir = output.parent / "secrets"
    # A single host keeps its state beside the file; the others use the system location.
    state_dir = str(output.parent / "state") if profile == "single" else "/var/lib/superset-async"
    data = starting_settings(profile, str(secrets_dir), state_dir)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    settings = parse_settings(text, str(output))  # what we write must validate
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    made, kept = [], []
    if secrets_dir.stat().st_mode & 0o077:  # an existing directory others could list or enter
        secrets_dir.chmod(0o700)
        kept.append(f"{secrets_dir}: made private (0700)")
    for where, path in secret_files(settings).values():
        file = Path(path)
        if file.exists():
            kept.append(f"{where}: {file} (exists, kept)")
            continue
        write_private(file, secrets.token_urlsafe(36) + "\n")
        made.append(f"{where}: {file}")
    # Created exclusively: a file that appeared meanwhile is not overwritten either.
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    click.echo(f"wrote {output} (profile {profile})")
    for line in made:
        click.echo(f"  generated {line}")
    for line in kept:
        click.echo(f"  {line}")
    if profile != "single":
        click.echo(
            "  the Redis, PostgreSQL and ClickHouse passwords were generated: set the same ones on those servers"
        )
    smtp_password = settings.reports.smtp.password_file if settings.reports.enabled else None
    if smtp_password and f"reports.smtp.password_file: {smtp_password}" in made:
        # A mail account's password is the provider's, not ours to generate: the file is a placeholder.
        click.echo(f"  {smtp_password} holds a random placeholder: write your mail account's password there")
    click.echo(f"next: superset-async check --settings {output}")
    click.echo(
        f"      superset-async up --settings {output}"
        if profile == "single"
        else "      on NixOS, point services.superset-async at the same secret files (examples/nixos/)"
    )
