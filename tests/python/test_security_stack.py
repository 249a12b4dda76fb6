"""The runner keeps its state and secrets private: on the session's real stack (no stack of its own),
and on the pieces that write other programs' configuration files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import requests
from fixtures.common import SettingsFactory, run_cli, write_secret
from fixtures.stack import Stack
from superset_async_glue.errors import UsageError
from superset_async_glue.loading import load_settings
from superset_async_glue.procfs import group_members
from superset_async_glue.runner.redis_server import plan_redis
from superset_async_glue.secret_io import write_private
from superset_async_glue.verify.client import SupersetClient
from test_settings import run_main

# Files without secrets that may be readable (inside the 0700 state dir): the rendered config, the
# demo's settings, and the config's bytecode, written by whichever process imports it first (`verify`
# run by another test, under that process's umask).
READABLE_BY_DESIGN = {"superset_config.py", "settings.json", "__pycache__"}
# The one file besides the secret files that holds a secret: redis-server reads its password from its
# config file (0600, in the 0700 run dir, regenerated at each start).
SECRET_BEARING = {"run/redis.conf": {"redis_password"}}
MAX_SCANNED_BYTES = 64 * 1024 * 1024


def _loose(path: Path) -> bool:
    mode = path.lstat().st_mode
    return bool(mode & 0o077) and not stat.S_ISLNK(mode)


def _config_bytecode(path: Path) -> bool:
    return path.parent.name == "__pycache__" and path.name.startswith("superset_config.")


def test_state_logs_redis_data_and_sqlite_are_private_under_umask_022(stack: Stack) -> None:
    """The session stack was started by this process's `superset-async up` under the usual umask: before
    the fix the state dir, logs, the Redis AOF/RDB and superset.db were world-readable."""
    umask = os.umask(0o022)
    os.umask(umask)
    assert umask & 0o044 == 0, f"this test needs the stack started under a umask like 022, not {umask:03o}"
    state = stack.state_dir
    # 0700 exactly: only a root runner's own PostgreSQL opens it to 0710 for the group postgres
    # (test_runner_postgresql.py checks that rule on its stack).
    assert state.stat().st_mode & 0o777 == 0o700
    for name in ("logs", "redis", "run", "secrets", "clickhouse"):
        assert (state / name).stat().st_mode & 0o777 == 0o700, name
    assert (state / "superset.db").stat().st_mode & 0o777 == 0o600
    assert list((state / "redis").rglob("*.aof")) or list((state / "redis").rglob("appendonly*")), "no AOF?"
    loose = [
        str(p.relative_to(state))
        for p in state.rglob("*")
        if _loose(p) and p.name not in READABLE_BY_DESIGN and not p.name.endswith(".sock") and not _config_bytecode(p)
    ]
    assert loose == [], f"readable by group or others: {loose[:20]}"


def test_the_demo_clickhouse_has_no_user_without_a_password(stack: Stack) -> None:
    url = f"http://127.0.0.1:{stack.clickhouse_http_port}/"
    for user in ("default", "superset"):
        refused = requests.post(url, data="SELECT 1", auth=(user, ""), timeout=10)
        assert refused.status_code != 200, user
        assert requests.post(url, data="SELECT 1", params={"user": user}, timeout=10).status_code != 200
    generated = stack.state_dir / "run" / "clickhouse" / "default_password"
    assert generated.stat().st_mode & 0o777 == 0o600
    password = generated.read_text().strip()
    assert requests.post(url, data="SELECT 1", auth=("default", password), timeout=10).content == b"1\n"
    assert password not in (generated.parent / "users.xml").read_text()


def test_a_marker_in_every_secret_file_appears_nowhere_else(stack: Stack) -> None:
    """Each secret file holds a random value (the markers). After a real async query and `verify`
    (text and --json), none of them is in a file of the state dir other than the secret files, in a
    log, in the rendered config, in the command line or environment of any process of the stack, or
    in verify's output."""
    generated = stack.state_dir / "run" / "clickhouse" / "default_password"
    secret_files = [*sorted((stack.state_dir / "secrets").iterdir()), generated]
    markers = {p.name: p.read_text().strip().encode() for p in secret_files}
    assert len(markers) >= 6 and all(len(m) >= 32 for m in markers.values())

    client = SupersetClient(stack.web_url, stack.admin_username, stack.admin_password())
    outcome = client.run_async(client.database_id(stack.clickhouse_database_name), "SELECT count() FROM demo.cities")
    assert outcome.state == "success", outcome.error
    text = run_cli("verify", "--state-dir", str(stack.state_dir), timeout=300)
    as_json = run_cli("verify", "--state-dir", str(stack.state_dir), "--json", timeout=300)
    # Every check ran (a check failing for a reason of its own still prints its whole report).
    assert text.code in (0, 1) and as_json.code in (0, 1), text.stdout + text.stderr + as_json.stderr
    assert "9/9" in text.stdout and len(json.loads(as_json.stdout)["checks"]) == 9

    places: dict[str, bytes] = {
        "verify (text)": (text.stdout + text.stderr).encode(),
        "verify --json": (as_json.stdout + as_json.stderr).encode(),
    }
    skip = {p.resolve() for p in secret_files}
    for path in stack.state_dir.rglob("*"):
        small = path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_SCANNED_BYTES
        if small and path.resolve() not in skip:
            places[str(path)] = path.read_bytes()
    pgids = {p["pgid"] for p in stack.stack_json()["processes"].values()}
    pids = [pid for pgid in pgids for pid in group_members(pgid)]
    assert len(pids) >= 5
    for pid in pids:
        for what in ("cmdline", "environ"):
            try:
                places[f"/proc/{pid}/{what}"] = Path(f"/proc/{pid}/{what}").read_bytes()
            except OSError:
                continue  # ended meanwhile
    allowed = {str(stack.state_dir / path): names for path, names in SECRET_BEARING.items()}
    assert all(Path(path).stat().st_mode & 0o777 == 0o600 for path in allowed)
    leaks = [
        f"{name} in {where}"
        for where, data in places.items()
        for name, marker in markers.items()
        if marker in data and name not in allowed.get(where, set())
    ]
    assert leaks == [], leaks
    assert any(".log" in where for where in places) and any("superset_config.py" in w for w in places)


# -- the pieces, without a stack ---------------------------------------------------------------------


def test_up_refuses_a_redis_without_a_password(make_settings: SettingsFactory, tmp_path: Path) -> None:
    result = run_main("up", "--settings", str(make_settings()), "--state-dir", str(tmp_path / "runner"))
    assert result.code == 2
    assert "  - redis.password_file: required: Redis holds pickles" in result.stderr
    assert not (tmp_path / "runner").exists()  # refused before anything was created
    # even a socket-only settings file (valid for `check`): the runner's Redis always listens on TCP too
    settings = load_settings(
        make_settings({"redis": {"unix_socket": str(tmp_path / "r.sock")}, "global_async_queries": {"enabled": False}})
    )
    with pytest.raises(UsageError, match=r"redis\.password_file is not set"):
        plan_redis(settings, tmp_path / "run", tmp_path / "data")


def test_a_redis_password_with_a_line_break_never_reaches_redis_conf(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    password = write_secret(tmp_path / "pw", "abc\nbind 0.0.0.0")
    settings = load_settings(make_settings({"redis": {"password_file": str(password)}}))
    with pytest.raises(UsageError, match=r"control character"):
        plan_redis(settings, tmp_path / "run", tmp_path / "data")
    assert not (tmp_path / "run" / "redis.conf").exists()


def test_write_private_creates_0600_files_and_0700_directories_whatever_the_umask(tmp_path: Path) -> None:
    umask = os.umask(0)
    try:
        write_private(tmp_path / "new" / "dir" / "secret", "s\n")
    finally:
        os.umask(umask)
    assert (tmp_path / "new" / "dir" / "secret").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "new" / "dir").stat().st_mode & 0o777 == 0o700
