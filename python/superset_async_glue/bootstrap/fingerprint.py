"""Bootstrap's fast path: skip importing Superset when nothing bootstrap depends on has changed.

A full bootstrap imports Superset's app (6-8 s of CPU on 2 cores) even when every step ends
"unchanged", and it runs at every `superset-async up` and every start of the init unit. After a full
run in which no step failed, a marker in state_dir records a fingerprint of what the steps read:

- the glue's and Superset's versions, the names of Superset's migration scripts (a new script is a
  new head) and every installed distribution's version (the lock);
- the settings (their canonical digest) and the rendered superset_config.py;
- the contents of the secrets a step uses (the metadata DB's and each database's password),
mixed by HMAC-SHA256 keyed with the secret key, so that the marker reveals nothing about them;

and the metadata DB's alembic revision. The next bootstrap with the same fingerprint reads that
revision back (plain SQLAlchemy, no Superset): the same revision means the same metadata DB at the
same schema, and every step is reported unchanged without running. A new, replaced or emptied
metadata DB, any change above, or a failed step last time means a full run. The marker is removed
before a full run starts, so a run that stops halfway never leaves a stale one.

What the fingerprint cannot see is a change made in Superset itself (a declared database deleted
in the UI): delete the marker (MARKER below) and the next bootstrap runs in full.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.metadata
import importlib.util
import json
from pathlib import Path

from .. import __version__
from ..loading import settings_digest
from ..secret_io import read_secret, write_private
from ..settings import Settings, database_credential

MARKER = "superset-async-bootstrap.json"


def marker_path(settings: Settings) -> Path:
    return Path(settings.state_dir) / MARKER


def _migration_scripts() -> list[str]:
    """The names of Superset's migration scripts, found without importing Superset."""
    spec = importlib.util.find_spec("superset")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    names: list[str] = []
    for location in locations:
        versions = Path(location) / "migrations" / "versions"
        if versions.is_dir():
            names += [p.name for p in versions.glob("*.py")]
    return sorted(names)


def _distributions() -> list[str]:
    found = {f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()}
    return sorted(found)


def fingerprint(settings: Settings, config_path: Path) -> str:
    """HMAC-SHA256, keyed by the secret key, of everything a bootstrap step reads (module docstring)."""
    secrets = {}
    if settings.metadata_db.password_file:
        secrets["metadata_db"] = read_secret(
            "metadata_db.password_file", settings.metadata_db.password_file, "metadata_db_password"
        )
    for declared in settings.databases:
        if declared.password_file:
            where = f"databases '{declared.name}' password_file"
            secrets[declared.name] = read_secret(where, declared.password_file, database_credential(declared))
    inputs = {
        "glue": __version__,
        "superset": importlib.metadata.version("apache-superset"),
        "migrations": _migration_scripts(),
        "distributions": _distributions(),
        "settings": settings_digest(settings),
        "config": hashlib.sha256(config_path.read_bytes()).hexdigest(),
        "secrets": secrets,
    }
    key = read_secret("secret_key_file", settings.secret_key_file, "secret_key").encode()
    message = json.dumps(inputs, sort_keys=True).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def metadata_revisions(settings: Settings) -> list[str] | None:
    """The metadata DB's alembic revisions, or None when it is absent or unreadable (never created here)."""
    uri = settings.metadata_uri()
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return None  # create_engine would create an empty file
    from sqlalchemy import create_engine, text  # noqa: PLC0415
    from sqlalchemy.engine.url import make_url  # noqa: PLC0415

    url = make_url(uri)
    if settings.metadata_db.password_file:
        password = read_secret("metadata_db.password_file", settings.metadata_db.password_file, "metadata_db_password")
        url = url.set(password=password)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    except Exception:  # no table, no server, wrong password: the full run reports it properly
        return None
    finally:
        engine.dispose()
    return sorted(str(row[0]) for row in rows)


def is_current(settings: Settings, config_path: Path) -> str | None:
    """When the last full run is still current, when it happened (its marker's `at`); else None."""
    try:
        recorded = json.loads(marker_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or recorded.get("fingerprint") != fingerprint(settings, config_path):
        return None
    revisions = metadata_revisions(settings)
    if not revisions or revisions != recorded.get("metadata_revisions"):
        return None
    return str(recorded.get("at", "earlier"))


def forget(settings: Settings) -> None:
    """Remove the marker: the run starting now is a full one, and may stop halfway."""
    marker_path(settings).unlink(missing_ok=True)


def record(settings: Settings, config_path: Path, at: str) -> None:
    """After a full run with no failed step: the marker the next bootstrap compares with."""
    revisions = metadata_revisions(settings)
    if not revisions:
        return
    data = {"fingerprint": fingerprint(settings, config_path), "metadata_revisions": revisions, "at": at}
    write_private(marker_path(settings), json.dumps(data, indent=2, sort_keys=True) + "\n")
