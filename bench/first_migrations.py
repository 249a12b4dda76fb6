"""A new SQLite metadata DB migrated with SQLite's default sync and with bootstrap's
`PRAGMA synchronous=OFF` (bootstrap/new_sqlite.py): the time each takes, and proof that both give
the same DB.

Each run is a fresh interpreter that builds Superset's app on a private config and runs
`flask_migrate.upgrade()` (what bootstrap's migrations step runs) on a new file, alternating the two
ways. The two DBs are then compared: every table, index and trigger with the same definition, and
every row the same. Superset's migrations are not byte-for-byte reproducible even between two runs
of the same way: a few tables rebuilt by alembic's batch mode list their constraints in a different
order from one interpreter to the next (string hashing), so definitions are compared as sets of lines.

Usage (from the repository root): .venv/bin/python bench/first_migrations.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RUN = """
import contextlib, io, json, resource, sys, time
from pathlib import Path
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
from superset.app import create_app
app = create_app()
with app.app_context():
    import flask_migrate
    from superset_async_glue.bootstrap.new_sqlite import unsynced_while_new
    from superset_async_glue.loading import load_settings
    settings = load_settings(Path(sys.argv[2]))
    unsynced = sys.argv[1] == "off"
    wall, used = time.monotonic(), cpu()
    with contextlib.redirect_stdout(io.StringIO()):
        if unsynced:
            with unsynced_while_new(settings, set()):
                flask_migrate.upgrade()
        else:
            flask_migrate.upgrade()
    print(json.dumps({"wall_s": time.monotonic() - wall, "cpu_s": cpu() - used}))
"""


def normalised(path: Path) -> tuple[dict[tuple[str, str], list[str]], dict[str, list[str]]]:
    """(each schema object's definition as a sorted list of lines, each table's rows sorted)."""
    with sqlite3.connect(path) as db:
        objects = db.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
        schema = {
            (t, n): sorted(line.strip().rstrip(",") for line in (sql or "").splitlines()) for t, n, sql in objects
        }
        rows = {
            n: sorted(map(repr, db.execute(f'SELECT * FROM "{n}"').fetchall()))  # noqa: S608 - names from sqlite_master
            for (t, n) in schema
            if t == "table" and not n.startswith("sqlite_")
        }
    return schema, rows


def migrate(root: Path, way: str, index: int) -> tuple[dict[str, float], Path]:
    state = root / f"{way}{index}"
    state.mkdir()
    (state / "secret_key").write_text("k" * 48)
    (state / "jwt").write_text("j" * 48)
    settings = state / "settings.json"
    settings.write_text(
        json.dumps(
            {
                "state_dir": str(state),
                "secret_key_file": str(state / "secret_key"),
                "global_async_queries": {"jwt_secret_file": str(state / "jwt")},
            }
        )
    )
    config = state / "superset_config.py"
    config.write_text(f'SECRET_KEY = "{"k" * 48}"\nSQLALCHEMY_DATABASE_URI = "sqlite:///{state}/superset.db"\n')
    env = {**os.environ, "SUPERSET_CONFIG_PATH": str(config), "SUPERSET_HOME": str(state)}
    done = subprocess.run(
        [sys.executable, "-c", RUN, way, str(settings)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1]), state / "superset.db"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    times: dict[str, list[dict[str, float]]] = {"full": [], "off": []}
    dbs: dict[str, list[Path]] = {"full": [], "off": []}
    with tempfile.TemporaryDirectory(prefix="first-migrations-") as tmp:
        for i in range(args.rounds):
            for way in ("full", "off") if i % 2 == 0 else ("off", "full"):
                measured, db = migrate(Path(tmp), way, i)
                times[way].append(measured)
                dbs[way].append(db)
                load = os.getloadavg()[0]
                print(f"{way}: {measured['wall_s']:.1f} s wall, {measured['cpu_s']:.1f} s CPU (load {load:.1f})")
        reference = normalised(dbs["full"][0])
        same = all(normalised(db) == reference for way in dbs for db in dbs[way])
        raw = {
            sqlite3.connect(db).execute("SELECT group_concat(sql, ';') FROM sqlite_master").fetchone()[0]
            for way in dbs
            for db in dbs[way]
        }
    for way in ("full", "off"):
        wall = statistics.median(t["wall_s"] for t in times[way])
        cpu = statistics.median(t["cpu_s"] for t in times[way])
        print(f"median {way}: {wall:.1f} s wall, {cpu:.1f} s CPU")
    print(f"every DB the same schema and rows (constraint order aside): {same}; distinct raw schema texts: {len(raw)}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
