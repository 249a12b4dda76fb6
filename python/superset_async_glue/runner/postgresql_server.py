"""The runner's own PostgreSQL for the metadata DB (metadata_db.local_postgresql).

Debian's server (/usr/lib/postgresql/<version>/bin) on STATE/postgresql: the cluster in data/, the
socket beside it, no TCP at all (listen_addresses ''), the socket 0700, and peer authentication: the
runner's OS user (so every Superset process it starts) is mapped to the role `superset`, which owns
the database `superset`; no password exists anywhere.

PostgreSQL refuses to run as root. A runner running as root starts it as Debian's `postgres` system
user, never root: the child drops to that user and its group, with no supplementary group, between
fork and exec. That user must reach STATE/postgresql through STATE: STATE becomes 0710 with the
server's group (search, no listing, for that group only; all inside STATE stays 0700/0600) and
STATE/postgresql belongs to the server's user (0700). A runner running as an ordinary user runs the
server as itself, and STATE stays 0700. The reasons for this choice are in docs/runner.md.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..debian_postgresql import DEBIAN_POSTGRESQL, INSTALL_HINT, debian_postgresql_bin
from ..errors import GlueError, UsageError
from ..settings import LOCAL_POSTGRESQL_ROLE, Settings, local_postgresql_dir
from .processes import Identity, tail

SERVER_USER = "postgres"  # Debian's system user for PostgreSQL, created by the postgresql package
SERVER_PROGRAMS = ("initdb", "postgres")
PRIVATE_STATE_MODE = 0o700
SHARED_STATE_MODE = 0o710  # the server's group may pass through STATE, not list it
# Every connection: the socket, the role superset, the runner's OS user mapped to it (pg_ident.conf).
HBA = (
    "# superset-async up: the socket only; peer authentication, the runner's OS user mapped to the role\n"
    f"local all {LOCAL_POSTGRESQL_ROLE} peer map=superset\n"
)


class PostgresStartError(GlueError):
    """initdb failed or the cluster belongs to another PostgreSQL version."""


@dataclass(frozen=True)
class PostgresPlan:
    """What the runner starts: Debian's postgres on STATE/postgresql, as `identity` (None: the runner's user)."""

    argv: tuple[str, ...]
    env: dict[str, str]
    bindir: Path
    directory: Path  # the socket's directory; holds data/, pg_hba.conf, pg_ident.conf
    data_dir: Path
    identity: Identity | None


def find_server_bin(root: Path = DEBIAN_POSTGRESQL) -> Path:
    """Debian's newest /usr/lib/postgresql/<version>/bin holding initdb and postgres."""
    bindir = debian_postgresql_bin(root)
    if bindir is None or not all((bindir / name).exists() for name in SERVER_PROGRAMS):
        raise UsageError(
            "metadata_db.local_postgresql: PostgreSQL's server programs (initdb, postgres in "
            f"/usr/lib/postgresql/<version>/bin) are not installed; {INSTALL_HINT}"
        )
    return bindir


def server_identity(euid: int | None = None) -> Identity | None:
    """Who runs the server: None (the runner's own user) unless the runner is root; then `postgres`."""
    if (os.geteuid() if euid is None else euid) != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise UsageError(
            "metadata_db.local_postgresql: the runner runs as root, which PostgreSQL refuses, and there is no "
            f"`{SERVER_USER}` system user to run it as; {INSTALL_HINT} (it creates the user), or run "
            "superset-async up as an ordinary user"
        ) from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise UsageError(
            f"metadata_db.local_postgresql: the system user `{SERVER_USER}` has uid {entry.pw_uid} and gid "
            f"{entry.pw_gid}; the server never runs as root: give `{SERVER_USER}` its own uid and group"
        )
    return Identity(entry.pw_uid, entry.pw_gid)


def state_dir_access(identity: Identity | None) -> tuple[int, int | None]:
    """STATE's mode, and the group it must have (None: left as it is), for a server run as `identity`."""
    if identity is None:
        return PRIVATE_STATE_MODE, None
    return SHARED_STATE_MODE, identity.gid


def unreachable_parent(state: Path, identity: Identity | None) -> Path | None:
    """The first directory above `state` the server's user may not pass through (mode bits), if any."""
    if identity is None:
        return None
    for parent in reversed(state.parents):
        info = parent.stat()
        if info.st_uid == identity.uid:
            bit = stat.S_IXUSR
        elif info.st_gid == identity.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return parent
    return None


def _own(path: Path, identity: Identity | None) -> None:
    if identity is not None:
        os.chown(path, identity.uid, identity.gid, follow_symlinks=False)


def _write_owned(path: Path, text: str, identity: Identity | None) -> None:
    """Replace `path` with a new 0600 file of the server's user (the runner writes, the server reads)."""
    tmp = path.with_name(f".{path.name}.new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    _own(tmp, identity)
    tmp.replace(path)


def _socket_directories(path: Path) -> str:
    """unix_socket_directories takes a list: one directory, double-quoted ("" inside)."""
    return '"' + str(path).replace('"', '""') + '"'


def server_environment() -> dict[str, str]:
    """The server's whole environment: nothing of the runner's (no variable of Superset's reaches it)."""
    return {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


def plan_postgresql(settings: Settings) -> PostgresPlan:
    """Prepare STATE/postgresql and its configuration for the server's user, and return how to start it."""
    bindir = find_server_bin()
    identity = server_identity()
    state = Path(settings.state_dir)
    directory = Path(local_postgresql_dir(settings.state_dir))
    blocked = unreachable_parent(state, identity)
    if blocked is not None:
        raise UsageError(
            f"metadata_db.local_postgresql: the server runs as `{SERVER_USER}`, which cannot pass through {blocked} "
            f"(mode {blocked.stat().st_mode & 0o777:03o}) to reach state_dir {state}; choose a state_dir below "
            f"directories others may pass through (such as /var/lib), or `chmod o+x {blocked}`"
        )
    mode, group = state_dir_access(identity)
    if group is not None:
        os.chown(state, -1, group)
    state.chmod(mode)
    directory.mkdir(mode=0o700, exist_ok=True)
    if identity is not None and directory.stat().st_uid != identity.uid:
        # Made by an earlier run as another user (say, an ordinary user's run, now root's).
        for path in (directory, *directory.rglob("*")):
            _own(path, identity)
    directory.chmod(0o700)
    client = pwd.getpwuid(os.geteuid()).pw_name
    hba, ident = directory / "pg_hba.conf", directory / "pg_ident.conf"
    _write_owned(hba, HBA, identity)
    _write_owned(ident, f"# map OS user -> role\nsuperset {client} {LOCAL_POSTGRESQL_ROLE}\n", identity)
    data = directory / "data"
    argv = (
        str(bindir / "postgres"),
        "-D",
        str(data),
        "-c",
        "listen_addresses=",
        "-c",
        f"unix_socket_directories={_socket_directories(directory)}",
        "-c",
        "unix_socket_permissions=0700",
        "-c",
        f"hba_file={hba}",
        "-c",
        f"ident_file={ident}",
    )
    return PostgresPlan(argv, server_environment(), bindir, directory, data, identity)


def initdb_if_needed(plan: PostgresPlan, log: Path) -> bool:
    """Create the cluster (role superset, peer auth, UTF-8) unless data/ holds one; True when created."""
    version_file = plan.data_dir / "PG_VERSION"
    version = plan.bindir.parent.name
    if version_file.exists():
        found = version_file.read_text(encoding="utf-8").strip()
        if found != version:
            raise PostgresStartError(
                f"{plan.data_dir} holds a PostgreSQL {found} cluster and this host's server is {version}: "
                f"dump it with PostgreSQL {found}'s pg_dump and restore it into a new cluster (move {plan.data_dir} "
                "away; the next up creates one), or run pg_upgrade"
            )
        return False
    argv = [
        str(plan.bindir / "initdb"),
        "-D",
        str(plan.data_dir),
        f"--username={LOCAL_POSTGRESQL_ROLE}",
        "--auth-local=peer",
        "--auth-host=reject",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
    ]
    with log.open("ab") as handle:
        handle.write(b"\n=== superset-async up: initdb\n")
        handle.flush()
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=plan.env,
            cwd=plan.directory,
            user=plan.identity.uid if plan.identity else None,
            group=plan.identity.gid if plan.identity else None,
            extra_groups=[] if plan.identity else None,
            check=False,
        )
    if done.returncode != 0:
        raise PostgresStartError(f"initdb exited with code {done.returncode}; last lines of {log}:\n{tail(log)}")
    return True


def ping(plan: PostgresPlan) -> bool:
    """The server accepts the runner's connection over its socket (peer authentication included)."""
    import psycopg2  # type: ignore[import-untyped]  # noqa: PLC0415 - the metadata DB's driver, only for this role

    try:
        connection = psycopg2.connect(
            host=str(plan.directory), user=LOCAL_POSTGRESQL_ROLE, dbname="postgres", connect_timeout=2
        )
    except psycopg2.Error:
        return False
    connection.close()
    return True


def ensure_database(plan: PostgresPlan) -> bool:
    """Create the database superset (owned by the role superset) unless it exists; True when created."""
    import psycopg2  # noqa: PLC0415

    connection = psycopg2.connect(
        host=str(plan.directory), user=LOCAL_POSTGRESQL_ROLE, dbname="postgres", connect_timeout=5
    )
    try:
        connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (LOCAL_POSTGRESQL_ROLE,))
            if cursor.fetchone() is not None:
                return False
            cursor.execute(f'CREATE DATABASE "{LOCAL_POSTGRESQL_ROLE}" OWNER "{LOCAL_POSTGRESQL_ROLE}"')
            return True
    finally:
        connection.close()
