"""The runner's own PostgreSQL (metadata_db.local_postgresql), on Debian's real server, no mocks.

One stack (`up --detach`, as root in CI: the server then runs as Debian's `postgres` user) holds
Superset's metadata in it: an async query's row is read back with psql over the socket, verify
passes, bootstrap's pg_dump works over the socket, a SIGKILLed postmaster is restarted by the
supervisor with its data, and `stop-role` and `down` stop it with a fast shutdown. The rest are millisecond tests
of the setting's validation and of the privilege and permission rules.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.common import SettingsFactory, write_secret
from fixtures.stack import Stack, start_stack
from fixtures.superset_api import SupersetApiError, SupersetClient
from superset_async_glue import procfs
from superset_async_glue.bootstrap.backups import backup_before_upgrade, libpq_uri
from superset_async_glue.errors import UsageError
from superset_async_glue.loading import load_settings
from superset_async_glue.runner.postgresql_server import (
    SERVER_USER,
    find_server_bin,
    plan_postgresql,
    server_identity,
    state_dir_access,
    unreachable_parent,
)
from superset_async_glue.runner.processes import Identity, ManagedProcess
from test_settings import run_main

# Files without secrets that may be readable inside the state dir (as in test_security_stack.py).
READABLE_BY_DESIGN = {"superset_config.py", "settings.json", "__pycache__"}


def postgres_identity() -> Identity:
    entry = pwd.getpwnam(SERVER_USER)  # created by Debian's postgresql package (scripts/setup)
    return Identity(entry.pw_uid, entry.pw_gid)


def state_dir_problems(state: Path, identity: Identity | None) -> list[str]:
    """Every way `state` is more open than the rule allows (empty: private).

    The rule: STATE is 0700; only while the runner's PostgreSQL runs as another user (root's runner),
    0710 with that user's group (search, no listing). STATE/postgresql is the server's user's, 0700.
    Nothing inside has a group or other bit, except files without secrets that are readable by design.
    """
    problems = []
    info = state.stat()
    mode = info.st_mode & 0o777
    if identity is None and mode != 0o700:
        problems.append(f"{state} is {mode:03o}, not 0700")
    if identity is not None and (mode != 0o710 or info.st_gid != identity.gid):
        problems.append(f"{state} is {mode:03o} group {info.st_gid}, not 0710 group {identity.gid}")
    server = state / "postgresql"
    if server.exists():
        owner = identity.uid if identity else os.geteuid()
        if server.stat().st_uid != owner or server.stat().st_mode & 0o777 != 0o700:
            problems.append(f"{server} is not 0700 owned by uid {owner}")
    for path in state.rglob("*"):
        mode = path.lstat().st_mode
        readable = path.name in READABLE_BY_DESIGN or path.parent.name == "__pycache__"
        if mode & 0o077 and not stat.S_ISLNK(mode) and not readable and not path.name.endswith(".sock"):
            problems.append(f"{path} is {mode & 0o777:03o}")
    return problems


@pytest.fixture
def reachable_tmp() -> Iterator[Path]:
    """A directory `postgres` can pass through (pytest's tmp_path sits in a 0700 root-owned tree)."""
    root = Path(tempfile.mkdtemp(prefix="sa-pg-"))
    root.chmod(0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- the setting --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata_db", "location", "fix"),
    [
        (
            {"uri": "postgresql://superset@db.example/superset"},
            "metadata_db.local_postgresql",
            "remove metadata_db.uri",
        ),
        ({"password_file": "@secret"}, "metadata_db.password_file", "remove metadata_db.password_file"),
    ],
    ids=["with-uri", "with-password-file"],
)
def test_local_postgresql_is_refused_with_a_uri_or_a_password(
    make_settings: SettingsFactory, tmp_path: Path, metadata_db: dict[str, str], location: str, fix: str
) -> None:
    if metadata_db.get("password_file") == "@secret":
        metadata_db = {"password_file": str(write_secret(tmp_path / "pg"))}
    checked = run_main(
        "check", "--settings", str(make_settings({"metadata_db": {"local_postgresql": True, **metadata_db}}))
    )
    assert checked.code == 2
    line = next(x for x in checked.stderr.splitlines() if x.startswith(f"  - {location}: "))
    assert fix in line, checked.stderr


def test_a_state_dir_too_long_for_the_socket_is_refused(make_settings: SettingsFactory) -> None:
    long_state = "/var/lib/" + "s" * 90
    checked = run_main(
        "check", "--settings", str(make_settings({"state_dir": long_state, "metadata_db": {"local_postgresql": True}}))
    )
    assert checked.code == 2
    assert "  - state_dir: is too long for metadata_db.local_postgresql" in checked.stderr, checked.stderr


def test_the_metadata_uri_is_the_socket_with_peer_authentication(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = load_settings(make_settings({"metadata_db": {"local_postgresql": True}}))
    expected = f"postgresql+psycopg2://superset@/superset?host={tmp_path}/state/postgresql"
    assert settings.metadata_uri() == expected
    assert settings.sqlite_path() is None
    assert libpq_uri(expected) == f"postgresql://superset@/superset?host={tmp_path}/state/postgresql"


def test_missing_server_programs_name_the_package(tmp_path: Path) -> None:
    (tmp_path / "15" / "bin").mkdir(parents=True)  # a client-only install: no initdb, no postgres
    with pytest.raises(UsageError, match=r"apt-get install -y postgresql"):
        find_server_bin(tmp_path)
    assert (find_server_bin() / "postgres").exists()  # and Debian's real one is there (scripts/setup)


# -- who runs the server, and what it may reach -----------------------------------------------------


def test_the_server_never_runs_as_root() -> None:
    assert server_identity(euid=1000) is None  # an ordinary runner: its own user
    as_root = server_identity(euid=0)
    assert as_root == postgres_identity() and as_root.uid != 0 and as_root.gid != 0
    assert state_dir_access(None) == (0o700, None)
    assert state_dir_access(as_root) == (0o710, as_root.gid)


def test_a_state_dir_below_a_directory_postgres_cannot_pass_is_refused(reachable_tmp: Path) -> None:
    locked = reachable_tmp / "locked"
    locked.mkdir(mode=0o700)
    (locked / "state").mkdir()
    assert unreachable_parent(locked / "state", postgres_identity()) == locked
    assert unreachable_parent(reachable_tmp / "state", postgres_identity()) is None
    assert unreachable_parent(locked / "state", None) is None  # the runner's own user reaches its own dirs


def test_the_plan_prepares_a_private_directory_for_the_server_user(
    make_settings: SettingsFactory, reachable_tmp: Path
) -> None:
    state = reachable_tmp / "state"
    state.mkdir(mode=0o700)
    (state / "superset_config.py").write_text("# readable by design\n")
    settings = load_settings(make_settings({"state_dir": str(state), "metadata_db": {"local_postgresql": True}}))
    identity = server_identity()

    plan = plan_postgresql(settings)

    assert plan.identity == identity
    assert state_dir_problems(state, identity) == []
    owner = identity.uid if identity else os.geteuid()
    for name in ("pg_hba.conf", "pg_ident.conf"):
        info = (plan.directory / name).stat()
        assert (info.st_uid, info.st_mode & 0o777) == (owner, 0o600), name
    assert (plan.directory / "pg_hba.conf").read_text().splitlines()[-1] == "local all superset peer map=superset"
    me = pwd.getpwuid(os.geteuid()).pw_name
    assert (plan.directory / "pg_ident.conf").read_text().splitlines()[-1] == f"superset {me} superset"
    assert {"listen_addresses=", "unix_socket_permissions=0700"} <= set(plan.argv)
    assert set(plan.env) == {"PATH", "LC_ALL", "LANG"}  # nothing of the runner's environment

    # The rule still catches a real leak: STATE searchable by all, or by another group; a file opened up.
    for leak in (lambda: state.chmod(0o711), lambda: os.chown(state, -1, 0), lambda: (state / "x").touch(0o644)):
        leak()
        assert state_dir_problems(state, identity or postgres_identity()), "a leak went unnoticed"
        state.chmod(0o710)
        if identity:
            os.chown(state, -1, identity.gid)
        (state / "x").unlink(missing_ok=True)


def test_a_role_with_an_identity_runs_as_that_user_without_the_runners_groups(tmp_path: Path) -> None:
    identity = server_identity()
    log = tmp_path / "id.log"
    process = ManagedProcess(
        "id", ("sh", "-c", "id -u; id -g; id -G"), log, {"PATH": "/usr/bin:/bin"}, Path("/"), identity=identity
    )
    assert process.wait(10)
    expected = identity or Identity(os.getuid(), os.getgid())
    lines = log.read_text().splitlines()[-3:]
    assert lines[:2] == [str(expected.uid), str(expected.gid)]
    if identity is not None:
        assert lines[2] == str(identity.gid)  # no supplementary group of root's


# -- a stack on it ---------------------------------------------------------------------------------


def psql(state: Path, sql: str) -> str:
    """psql over the socket as the runner's user (mapped to the role superset by pg_ident.conf)."""
    command = [str(find_server_bin() / "psql"), "-h", str(state / "postgresql"), "-U", "superset", "-d", "superset"]
    done = subprocess.run([*command, "-Atc", sql], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def pg_isready(state: Path) -> bool:
    command = [str(find_server_bin() / "pg_isready"), "-q", "-h", str(state / "postgresql"), "-U", "superset"]
    return subprocess.run(command, timeout=30, check=False).returncode == 0


def run_query(stack: Stack, sql: str, timeout: float = 60) -> None:
    """An async query on the demo ClickHouse; resubmitted while the web still reconnects."""
    started = time.monotonic()
    while True:
        try:
            client = SupersetClient(stack.web_url, stack.admin_username, stack.admin_password())
            outcome = client.run_async(client.database_id(stack.clickhouse_database_name), sql)
        except SupersetApiError:
            if time.monotonic() - started > timeout:
                raise
            time.sleep(0.5)
            continue
        assert outcome.state == "success", outcome.error
        return


def test_up_keeps_the_metadata_in_its_postgresql_restarts_it_with_its_data_and_down_stops_it(
    reachable_tmp: Path,
) -> None:
    identity = server_identity()
    with start_stack(reachable_tmp, {"metadata_db": {"local_postgresql": True}}) as stack:
        state = stack.state_dir
        first = stack.stack_json()["processes"]["postgresql"]
        status_text = Path(f"/proc/{first['pid']}/status").read_text()
        uid = int(next(x for x in status_text.splitlines() if x.startswith("Uid:")).split()[1])
        assert uid == (identity.uid if identity else os.geteuid()) and uid != 0
        assert state_dir_problems(state, identity) == []
        assert not (state / "superset.db").exists()

        marker = f"pg_marker_{secrets.token_hex(4)}"
        run_query(stack, f"SELECT 1 AS {marker}")
        counted = f"SELECT count(*) FROM query WHERE sql LIKE '%{marker}%'"  # noqa: S608 - a hex marker
        assert psql(state, counted) == "1"  # SQL Lab's query row lives in PostgreSQL
        assert int(psql(state, "SELECT count(*) FROM ab_user")) >= 1

        verified = stack.cli("verify", "--json")
        assert verified.code == 0, verified.stdout + verified.stderr
        config = next(c for c in json.loads(verified.stdout)["checks"] if c["number"] == 6)
        assert config["status"] == "pass", config
        assert f"metadata postgresql+psycopg2://superset@/superset?host={state}/postgresql" in config["reason"], config

        dump = backup_before_upgrade(load_settings(stack.settings_path), {"test"})
        assert dump.suffix == ".pgdump" and dump.stat().st_size > 0 and dump.stat().st_mode & 0o777 == 0o600

        others = {role: p["pid"] for role, p in stack.stack_json()["processes"].items() if role in ("web", "worker")}
        os.kill(first["pid"], signal.SIGKILL)
        killed = time.monotonic()
        deadline = time.monotonic() + 30
        while True:
            now = stack.stack_json()["processes"]["postgresql"]
            if now["pid"] != first["pid"] and now["restarts"] == 1 and procfs.is_alive(now["pid"], now["start_ticks"]):
                break
            assert time.monotonic() < deadline, f"postgresql not restarted: {now}"
            time.sleep(0.2)
        assert now["last_exit_code"] == -signal.SIGKILL
        restarted = time.monotonic()
        recovered = time.monotonic() + 30  # crash recovery (WAL replay) before it accepts connections
        while not pg_isready(state):
            assert time.monotonic() < recovered, "postgresql did not accept connections within 30s of its restart"
            time.sleep(0.2)
        accepting = time.monotonic()
        assert psql(state, counted) == "1"  # the data survived the crash
        run_query(stack, f"SELECT 2 AS {marker}")  # web and worker reconnect by themselves
        print(
            f"postgresql SIGKILL: restarted after {restarted - killed:.1f}s, accepting connections after "
            f"{accepting - killed:.1f}s, the next async query done after {time.monotonic() - killed:.1f}s"
        )
        assert psql(state, counted) == "2"
        after = stack.stack_json()["processes"]
        assert {role: after[role]["pid"] for role in others} == others  # reconnected, not restarted

        held = stack.cli("stop-role", "postgresql")  # a fast shutdown too, and no restart meanwhile
        assert held.code == 0, held.stdout + held.stderr
        assert (state / "logs" / "postgresql.log").read_text().rstrip().endswith("database system is shut down")
        started = stack.cli("start-role", "postgresql")
        assert started.code == 0, started.stdout + started.stderr

        down = stack.cli("down")
        assert down.code == 0, down.stdout + down.stderr
        last = stack.stack_json()["processes"]["postgresql"]
        assert procfs.group_members(last["pgid"]) == []
        log = (state / "logs" / "postgresql.log").read_text()
        assert log.count("received fast shutdown request") == 2 and log.rstrip().endswith(
            "database system is shut down"
        )
