"""How long 50 and 200 async SQL Lab queries submitted at once take (docs/reliability.md, "Load").

The same code as tests/python/test_load.py (superset_async_glue.sqllab_load): N distinct queries
released together by a barrier, each thread with its own HTTP session, one poller on
`/api/v1/query/updated_since`. Each size is run --runs times on one stack; the report gives medians
of the wall time (barrier to the last query seen ended) and of each run's p50/p90/p99/max latency
(submit to `success` seen, resolution 0.2 s), and the "database is locked" lines found in the logs.
A run where any query does not end `success` with its own rows stops the benchmark. Not a test:
numbers depend on the machine and its load.

Usage (from the repository root, with the project's venv):
  .venv/bin/python bench/load.py                  # starts a private demo stack (worker -c 4), stops it after
  .venv/bin/python bench/load.py --state-dir D    # a stack already started with `up --detach`
  .venv/bin/python bench/load.py --sizes 50 200 500 --runs 3
  .venv/bin/python bench/load.py --postgres     # metadata on a throwaway PostgreSQL cluster, run as the
                                                # postgres user (so as root); bench/results/load-postgresql.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from superset_async_glue.runner.demo import DEMO_DATABASE_NAME, DEMO_ROWS, demo_settings
from superset_async_glue.sqllab_load import LoadRun, expected_rows, listed_queries, locked_lines, run_load
from superset_async_glue.verify.client import SupersetClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verify_speed import free_port, machine

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUT = REPO / "bench" / "results" / "load.md"
NAMES = [row[1] for row in DEMO_ROWS]


def start_postgres(root: Path) -> tuple[dict[str, str], Path]:
    """A throwaway PostgreSQL cluster on a free loopback port, run as the `postgres` user (it refuses
    root): returns the metadata_db settings and the data directory (stop it with stop_postgres)."""
    bindir = Path(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip())
    data = Path(tempfile.mkdtemp(prefix="load-bench-pg-"))
    shutil.chown(data, "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_pg, str(bindir / "initdb"), "-D", str(data / "db"), "-A", "trust"], capture_output=True, check=True
    )
    port = free_port()
    with (data / "db" / "postgresql.conf").open("a") as conf:
        conf.write(f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{data}'\n")
    hba = data / "db" / "pg_hba.conf"
    hba.write_text("local all postgres trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    log = str(data / "postgres.log")
    subprocess.run([*as_pg, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-l", log, "-w", "start"], check=True)
    password = secrets.token_hex(16)
    password_file = root / "metadata-db-password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    sql = f"CREATE ROLE superset LOGIN PASSWORD '{password}'; CREATE DATABASE superset OWNER superset;"
    psql = [*as_pg, str(bindir / "psql"), "-h", str(data), "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
    for statement in sql.split("; "):
        subprocess.run([*psql, "-c", statement.rstrip(";")], capture_output=True, check=True)
    uri = f"postgresql://superset@127.0.0.1:{port}/superset"
    return {"uri": uri, "password_file": str(password_file)}, data


def stop_postgres(data: Path) -> None:
    bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
    pg_ctl = [str(Path(bindir) / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "-w", "stop"]
    subprocess.run(["runuser", "-u", "postgres", "--", *pg_ctl], capture_output=True, check=False)
    shutil.rmtree(data, ignore_errors=True)


def start(root: Path, concurrency: int, metadata_db: dict[str, str] | None) -> Path:
    state = root / "state"
    state.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(state, web_port=free_port(), redis_port=free_port(), clickhouse_http_port=free_port())
    data = json.loads(settings.read_text())
    data["worker"]["concurrency"] = concurrency
    if metadata_db is not None:
        data["metadata_db"] = metadata_db
    settings.write_text(json.dumps(data, indent=2) + "\n")
    argv = [str(BIN / "superset-async"), "up", "--detach", "--settings", str(settings), "--state-dir", str(state)]
    up = subprocess.run(
        [*argv, "--clickhouse-spare-port", str(free_port())], capture_output=True, text=True, check=False
    )
    if up.returncode != 0:
        raise SystemExit(f"up failed:\n{up.stdout}\n{up.stderr}")
    return state


def checked(client: SupersetClient, run: LoadRun) -> LoadRun:
    """The run, if every query ended success with its own rows and is listed once; else stop."""
    bad = [q for q in run.queries if q.state != "success" or q.rows != expected_rows(run.tag, q.index, NAMES)]
    listed = listed_queries(client, run.tag)
    if bad or len(listed) != len(run.queries) or set(listed.values()) != {1}:
        raise SystemExit(f"{run.summary()}\nwrong: {bad[:5]}\nlisted: {len(listed)} client ids")
    return run


def measure(state_dir: Path, sizes: list[int], runs: int) -> tuple[dict[int, list[LoadRun]], list[str], list[float]]:
    settings = json.loads((state_dir / "settings.json").read_text())
    password = Path(settings["admin"]["password_file"]).read_text().rstrip("\r\n")
    client = SupersetClient(f"http://127.0.0.1:{settings['web']['port']}/", settings["admin"]["username"], password)
    database_id = client.database_id(DEMO_DATABASE_NAME)
    checked(client, run_load(client, database_id, 10))  # warm every web and worker process once
    load = [os.getloadavg()[0]]
    results: dict[int, list[LoadRun]] = {n: [] for n in sizes}
    for _ in range(runs):
        for n in sizes:
            run = checked(client, run_load(client, database_id, n, timeout=600))
            print(run.summary(), flush=True)
            results[n].append(run)
    load.append(os.getloadavg()[0])
    return results, locked_lines(state_dir / "logs"), load


def _med(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def report(
    results: dict[int, list[LoadRun]], locked: list[str], load: list[float], concurrency: int, metadata: str
) -> str:
    rows = []
    for n, runs in results.items():
        walls = [r.wall_seconds for r in runs]
        pct = {k: [r.percentiles()[k] for r in runs] for k in ("p50", "p90", "p99", "max")}
        rate = n / statistics.median(walls)
        rows.append(
            f"| {n} | {len(runs)} | {_med(walls)} | {rate:.1f} | {_med(pct['p50'])} | {_med(pct['p90'])} "
            f"| {_med(pct['p99'])} | {_med(pct['max'])} | {_med([r.submit_seconds for r in runs])} |"
        )
    table = "\n".join(rows)
    locked_text = "none" if not locked else f"{len(locked)}, first: `{locked[0]}`"
    return f"""# Load: async SQL Lab queries submitted at once

Measured {datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")} by `bench/load.py` on {machine()}.
Load average {load[0]:.2f} before, {load[1]:.2f} after. A private local stack: Superset 6.1.0 on {metadata}
metadata, gunicorn 2 workers x 4 threads, one prefork worker with {concurrency} processes (`-O fair`), beat,
Redis, ClickHouse, all on the same machine as the client.

Each run: N distinct queries (`SELECT <i> AS n, name, '<tag>' AS run` on the 8 rows of demo.cities)
released together by a barrier, one thread and HTTP session each, followed by one poller on
`/api/v1/query/updated_since` every 0.2 s. Every run of every size ended with all N `success`, each
with its own 8 rows, each listed once in Superset's query list. Latency: from just before the submit
to `success` seen by the poller. Wall: from the barrier to the last `success` seen. Medians over the
runs, with min-max; the percentiles are each run's own, then their median.

| queries at once | runs | wall | queries/s | p50 | p90 | p99 | max | all 202s in |
|---|---|---|---|---|---|---|---|---|
{table}

"database is locked" lines in the stack's logs after all runs: {locked_text}.
"""  # noqa: S608 - Markdown that quotes a query, not SQL sent anywhere


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", type=Path, help="state dir of a running stack (up --detach)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--runs", type=int, default=5, help="runs of each size")
    parser.add_argument("--concurrency", type=int, default=4, help="worker processes of the stack started here")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="metadata on a throwaway PostgreSQL (pg_config --bindir) for the stack started here",
    )
    parser.add_argument("--output", type=Path, default=None, help=f"default: {OUT.name}, or load-postgresql.md")
    args = parser.parse_args()
    output = args.output or (OUT.with_name("load-postgresql.md") if args.postgres else OUT)
    root = None if args.state_dir else Path(tempfile.mkdtemp(prefix="load-bench-"))
    pg_data = None
    try:
        if root is not None:
            metadata_db = None
            if args.postgres:
                metadata_db, pg_data = start_postgres(root)
            state_dir = start(root, args.concurrency, metadata_db)
        else:
            state_dir = args.state_dir.resolve()
        results, locked, load = measure(state_dir, args.sizes, args.runs)
    finally:
        if root is not None:
            subprocess.run(
                [str(BIN / "superset-async"), "down", "--state-dir", str(root / "state")],
                capture_output=True,
                check=False,
            )
        if pg_data is not None:
            stop_postgres(pg_data)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
    settings = json.loads((state_dir / "settings.json").read_text())
    concurrency = settings.get("worker", {}).get("concurrency", 4)
    uri = (settings.get("metadata_db") or {}).get("uri") or "sqlite"
    metadata = "PostgreSQL" if uri.startswith("postgresql") else "SQLite"
    text = report(results, locked, load, concurrency, metadata)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
