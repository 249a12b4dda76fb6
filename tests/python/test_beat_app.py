"""Beat's Celery app (superset_async_glue.beat_app): the rendered CELERY_CONFIG, and no Superset import.

That beat's messages reach the worker is shown on the session stack (tests/python/test_runner.py
checks beat's command line; the reports tests run what it sends); here, what beat is built from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fixtures.common import SettingsFactory, run_cli, write_secret

PROBE = """\
import json, sys
from superset_async_glue.beat_app import app
conf = app.conf
print(json.dumps({
    "broker": conf.broker_url,
    "imports": list(conf.imports),
    "schedule": {name: entry["task"] for name, entry in conf.beat_schedule.items()},
    "superset_imported": any(m == "superset" or m.startswith("superset.") for m in sys.modules),
}))
"""


def _probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)


def test_beat_app_is_the_rendered_celery_config_without_superset(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    password = write_secret(tmp_path / "redis_password")
    settings = make_settings({"redis": {"host": "127.0.0.1", "port": 6390, "password_file": str(password)}})
    config = tmp_path / "superset_config.py"
    rendered = run_cli("render", "--settings", str(settings), "-o", str(config))
    assert rendered.code == 0, rendered.stdout + rendered.stderr

    proc = _probe({**os.environ, "SUPERSET_CONFIG_PATH": str(config)})

    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.splitlines()[-1])
    assert got["schedule"] == {"reports.scheduler": "reports.scheduler", "reports.prune_log": "reports.prune_log"}
    assert got["imports"] == []  # beat's start would import Superset's task modules otherwise
    assert got["superset_imported"] is False
    assert got["broker"].startswith("redis://") and got["broker"].endswith("@127.0.0.1:6390/0")


def test_beat_app_without_a_config_path_names_the_variable() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SUPERSET_CONFIG_PATH"}
    proc = _probe(env)
    assert proc.returncode != 0
    assert "SUPERSET_CONFIG_PATH is not set" in proc.stderr
    assert "superset-async exec beat" in proc.stderr
