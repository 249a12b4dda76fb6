"""Settings -> flowerconfig.py, the file Flower reads through `--conf` (tornado's parse_config_file).

Flower takes basic auth as `user:password` from its command line, its environment (FLOWER_BASIC_AUTH)
or this file. The first two are visible to every local user (/proc/PID/cmdline) or to anything the
process spawns, so the password is read here, when Flower starts, from systemd's
$CREDENTIALS_DIRECTORY/flower_password first, else from flower.password_file. The rendered file
holds no secret and can live in the Nix store. Names that are not Flower options are ignored by
tornado, so the helper below does not leak into Flower's settings.

`superset-async render --flower --settings S --output F` is how the NixOS module renders it at
build time (the one entry point every build has on its PATH); the runner writes it beside
superset_config.py.
"""

from __future__ import annotations

from pathlib import Path

from .render import pyliteral, secret_reader_source
from .settings import Settings
from .settings_monitoring import FLOWER_PASSWORD_CREDENTIAL

FLOWER_CONF_NAME = "flowerconfig.py"

# Flower prints an uncaught exception from its config file as a traceback; a short message is clearer.
_AUTH_READER = """
def _flower_password(setting, path, credential):
    try:
        return read_secret(setting, path, credential)
    except SecretFileError as err:
        raise SystemExit(f"superset-async flower: {err}") from None
"""


def flower_conf_path(config_path: Path) -> Path:
    """flowerconfig.py sits beside superset_config.py (the runner's state dir, /etc/superset-async on NixOS)."""
    return config_path.with_name(FLOWER_CONF_NAME)


def render_flower_config(settings: Settings) -> str:
    f = settings.flower
    parts = [
        '"""Flower configuration for the superset-async stack (rendered from the settings; no secret inside)."""',
        "",
    ]
    if f.password_file is None:
        parts.append("# No flower.password_file: no basic auth (allowed on a loopback address only).")
    else:
        parts += [
            secret_reader_source(),
            _AUTH_READER,
            "",
            "basic_auth = ["
            f"{pyliteral(f.user + ':')} + _flower_password("
            f"'flower.password_file', {pyliteral(f.password_file)}, {pyliteral(FLOWER_PASSWORD_CREDENTIAL)})]",
        ]
    # Workers that restart forget nothing to Flower; drop a worker from /metrics an hour after it went away.
    parts += ["purge_offline_workers = 3600", ""]
    # Queue depth in /metrics: Flower runs the glue's Celery app (beat_app), so the glue is importable here.
    parts += [
        "from superset_async_glue.flower_metrics import register as _register_queue_depth",
        "",
        "_register_queue_depth()",
        "",
    ]
    return "\n".join(parts)
