"""`render`: same settings, same bytes; no secret in the file; secrets read at import with precise errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from fixtures.common import SettingsFactory, run_cli, write_secret
from superset_async_glue.settings import MANAGED_CONFIG_KEYS


def render(settings: Path, out: Path) -> str:
    result = run_cli("render", "--settings", str(settings), "--output", str(out))
    assert result.code == 0, result
    return out.read_text()


def import_config(config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Import the rendered module in the stack's interpreter, printing a few effective values."""
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('superset_config', {str(config)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "print(json.dumps({'broker': m.CeleryConfig.broker_url, 'cache': m.CACHE_CONFIG['CACHE_REDIS_URL'],"
        " 'secret_key': m.SECRET_KEY, 'extra': getattr(m, 'MY_EXTRA', None)}))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=60
    )


def test_same_settings_same_bytes_whatever_the_key_order(make_settings: SettingsFactory, tmp_path: Path) -> None:
    first = make_settings({"redis": {"port": 6390, "dbs": {"broker": 5}}, "web": {"workers": 3}})
    data = json.loads(first.read_text())
    shuffled = tmp_path / "shuffled.json"
    shuffled.write_text(json.dumps(dict(reversed(list(data.items()))), indent=7, sort_keys=False))
    explicit_defaults = make_settings(
        {
            "redis": {"port": 6390, "host": "127.0.0.1", "dbs": {"broker": 5, "results": 1}},
            "web": {"workers": 3, "threads": 4},
            "sql_lab": {"timeout_seconds": 300},
        },
        name="explicit.json",
    )
    texts = {render(p, tmp_path / f"{p.stem}.py") for p in (first, shuffled, explicit_defaults, first)}
    assert len(texts) == 1


def test_header_carries_the_settings_digest_and_no_timestamp(make_settings: SettingsFactory, tmp_path: Path) -> None:
    settings = make_settings({"redis": {"password_file": str(write_secret(tmp_path / "redis_pw"))}})
    text = render(settings, tmp_path / "c.py")
    digest = run_cli("check", "--settings", str(settings)).stdout.split("sha256 ")[1].rstrip(")\n")
    assert f"from settings sha256 {digest}." in text
    assert "2026" not in text and "date" not in text.lower()


def test_secrets_stay_out_of_the_file_and_are_read_at_import(make_settings: SettingsFactory, tmp_path: Path) -> None:
    settings = make_settings({"redis": {"password_file": str(write_secret(tmp_path / "redis_pw", "r3d!s"))}})
    data = json.loads(settings.read_text())
    secret_values = [Path(data["secret_key_file"]).read_text().strip(), "r3d!s"]
    text = render(settings, tmp_path / "c.py")
    for value in secret_values:
        assert value not in text
    loaded = import_config(tmp_path / "c.py")
    assert loaded.returncode == 0, loaded.stderr
    values = json.loads(loaded.stdout)
    assert values["secret_key"] == secret_values[0]
    assert values["broker"] == "redis://:r3d%21s@127.0.0.1:6379/0"


def test_missing_or_empty_secret_fails_the_import_naming_setting_and_path(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings()
    config = tmp_path / "c.py"
    render(settings, config)
    key_file = Path(json.loads(settings.read_text())["secret_key_file"])
    key_file.write_text("\n")
    empty = import_config(config)
    assert empty.returncode != 0
    assert f"superset-async: secret_key_file: secret file {key_file} is empty" in empty.stderr
    key_file.unlink()
    missing = import_config(config)
    assert f"superset-async: secret_key_file: cannot read secret file {key_file}: No such file" in missing.stderr


def test_credentials_directory_wins_over_the_configured_path(make_settings: SettingsFactory, tmp_path: Path) -> None:
    config = tmp_path / "c.py"
    render(make_settings(), config)
    creds = tmp_path / "creds"
    creds.mkdir()
    write_secret(creds / "secret_key", "from-systemd-" + "x" * 32)
    loaded = import_config(config, env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert json.loads(loaded.stdout)["secret_key"] == "from-systemd-" + "x" * 32


def test_every_key_the_config_renders_is_refused_as_a_secret_files_key(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    """MANAGED_CONFIG_KEYS (settings.py) must list every name the renderer assigns, with every part on."""
    everything = {
        "web": {"public_url": "https://superset.example.org/"},
        "reports": {"enabled": True, "smtp": {"host": "mail.example", "user": "u", "password_file": "/run/k/m"}},
        "secret_files": {"MAPBOX_API_KEY": "/run/keys/mapbox"},
        "redis": {"password_file": "/run/keys/redis"},
        "sql_lab": {"lanes": {"interactive": {"databases": ["mart"]}}},
    }
    text = render(make_settings(everything), tmp_path / "c.py")
    rendered = set(re.findall(r"^([A-Z][A-Z0-9_]*) = ", text, re.MULTILINE)) - {"MAPBOX_API_KEY"}
    assert sorted(rendered - set(MANAGED_CONFIG_KEYS)) == [], "add these to MANAGED_CONFIG_KEYS in settings.py"


def test_secret_files_are_read_at_import_from_their_credential_first(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    key_file = write_secret(tmp_path / "mapbox", "from-the-path")
    config = tmp_path / "c.py"
    render(make_settings({"secret_files": {"MAPBOX_API_KEY": str(key_file)}}), config)
    assert "from-the-path" not in config.read_text()
    code = (
        "import importlib.util\n"
        f"spec = importlib.util.spec_from_file_location('superset_config', {str(config)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); print(m.MAPBOX_API_KEY)\n"
    )
    creds = tmp_path / "creds"
    creds.mkdir()
    for env, expected in (({}, "from-the-path"), ({"CREDENTIALS_DIRECTORY": str(creds)}, "from-systemd")):
        if env:
            write_secret(creds / "secret_file_mapbox_api_key", "from-systemd")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env})
        assert out.stdout.strip() == expected, out.stderr


def test_unix_socket_urls_in_each_dialect(make_settings: SettingsFactory, tmp_path: Path) -> None:
    text = render(make_settings({"redis": {"unix_socket": "/run/redis-sa/redis.sock"}}), tmp_path / "c.py")
    assert "broker_url = _with_auth('redis+socket:///run/redis-sa/redis.sock?virtual_host=0')" in text
    assert "result_backend = _with_auth('redis+socket:///run/redis-sa/redis.sock?db=1')" in text
    assert "_with_auth('unix:///run/redis-sa/redis.sock?db=2')" in text
    # the login limiter's storage (limits spells a unix socket redis+unix://)
    assert "RATELIMIT_STORAGE_URI = 'redis+' + _with_auth('unix:///run/redis-sa/redis.sock?db=2')" in text
    # Superset's GAQ backend only speaks TCP, so it keeps host and port
    assert "'CACHE_REDIS_HOST': '127.0.0.1'" in text


def test_extra_config_is_appended_verbatim(make_settings: SettingsFactory, tmp_path: Path) -> None:
    config = tmp_path / "c.py"
    render(make_settings({"extra_config": "MY_EXTRA = {'rows': 10}\n"}), config)
    assert config.read_text().endswith("# extra_config from the settings (verbatim)\nMY_EXTRA = {'rows': 10}\n")
    assert json.loads(import_config(config).stdout)["extra"] == {"rows": 10}


def test_rendered_file_is_clean_python(make_settings: SettingsFactory, tmp_path: Path) -> None:
    config = tmp_path / "superset_config.py"
    render(make_settings({"redis": {"tls": {"enabled": True, "ca_file": "/etc/ssl/ca.pem"}}}), config)
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [str(ruff), "check", "--isolated", "--select", "E,F,W", "--line-length", "200", str(config)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def celery_effective_conf(config: Path) -> dict[str, object]:
    """A Celery app configured from the rendered CELERY_CONFIG, as Superset's is: what Celery will use."""
    code = (
        "import importlib.util, json\n"
        "from celery import Celery\n"
        f"spec = importlib.util.spec_from_file_location('superset_config', {str(config)!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "app = Celery('probe', set_as_current=False); app.config_from_object(m.CELERY_CONFIG)\n"
        "c = app.conf\n"
        "print(json.dumps({'acks_late': c.task_acks_late, 'reject': c.task_reject_on_worker_lost,"
        " 'visibility': c.broker_transport_options.get('visibility_timeout'),"
        " 'time_limit': c.task_annotations['sql_lab.get_sql_results']['time_limit'],"
        " 'running_timeout': m.SUPERSET_ASYNC_SQLLAB_RUNNING_TIMEOUT_SECONDS}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, object] = json.loads(proc.stdout.splitlines()[-1])
    return result


def test_acks_late_comes_with_reject_on_worker_lost_and_visibility_follows_the_hard_limit(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    # A long async limit: the hard limit is 7200 + 60 s, so kombu's 3600 s default would re-deliver
    # a query still waiting or running; the rendered timeout is two hard limits plus 600 s.
    settings = make_settings(
        {
            "celery": {"task_acks_late": True},
            "sql_lab": {"async_time_limit_seconds": 7200, "running_grace_seconds": 90},
        }
    )
    config = tmp_path / "superset_config.py"
    text = render(settings, config)
    assert "    task_reject_on_worker_lost = True\n" in text
    assert "'visibility_timeout': 15120," in text
    assert celery_effective_conf(config) == {
        "acks_late": True,
        "reject": True,
        "visibility": 15120,
        "time_limit": 7260,
        "running_timeout": 7350,
    }


def test_without_acks_late_nothing_is_re_queued(make_settings: SettingsFactory, tmp_path: Path) -> None:
    config = tmp_path / "superset_config.py"
    render(make_settings(), config)
    conf = celery_effective_conf(config)
    assert (conf["acks_late"], conf["reject"], conf["visibility"]) == (False, False, 3600)
    assert conf["running_timeout"] == 300 + 60 + 60
