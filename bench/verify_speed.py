"""How fast `superset-async verify` is, against the `celery inspect ping` it replaces (docs/verify.md).

Runs, against one running stack, N times each:
  - `superset-async verify --json` (all nine checks, the async SQL Lab query and the GAQ round trip),
  - `superset-async verify --json --no-query` (everything but check 9),
  - `celery --app=superset.tasks.celery_app:app inspect ping` (Superset's CLI way to ask a worker),
and writes medians, spreads and ratios to bench/results/verify.md. Wall-clock of the whole command,
interpreter start included. Not a test: numbers depend on the machine and its load.

With --baseline DIR (a `python/` directory of another checkout of the glue, e.g. from `git archive`),
each run of the baseline's verify (DIR first on PYTHONPATH) alternates with a run of this checkout's,
against the same stack, so that both see the same load.

Usage (from the repository root, with the project's venv):
  .venv/bin/python bench/verify_speed.py                 # starts a private demo stack, stops it after
  .venv/bin/python bench/verify_speed.py --state-dir D   # a stack already started with `up --detach`
  .venv/bin/python bench/verify_speed.py --state-dir D --baseline /tmp/old/python
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUT = REPO / "bench" / "results" / "verify.md"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)
    return time.monotonic() - started, proc


def spread(values: list[float]) -> str:
    return (
        f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, "
        f"stdev {statistics.stdev(values) if len(values) > 1 else 0:.2f}, n={len(values)})"
    )


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal"))
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.0f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", type=Path, help="state dir of a running stack (up --detach)")
    parser.add_argument("--runs", type=int, default=7, help="runs of each verify variant")
    parser.add_argument("--ping-runs", type=int, default=5, help="runs of celery inspect ping")
    parser.add_argument("--output", type=Path, default=OUT)
    parser.add_argument("--baseline", type=Path, help="python/ dir of another checkout, run alternately")
    args = parser.parse_args()
    glue = str(BIN / "superset-async")
    started_here = None
    if args.state_dir is None:
        root = Path(tempfile.mkdtemp(prefix="verify-bench-"))
        state = root / "state"
        up = subprocess.run(
            [
                glue,
                "up",
                "--detach",
                "--state-dir",
                str(state),
                "--web-port",
                str(free_port()),
                "--redis-port",
                str(free_port()),
                "--clickhouse-port",
                str(free_port()),
                "--clickhouse-spare-port",
                str(free_port()),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if up.returncode != 0:
            print(up.stdout, up.stderr, file=sys.stderr)
            return 1
        started_here = state
    state_dir = (args.state_dir or started_here).resolve()  # type: ignore[union-attr]
    try:
        runs = measure(glue, state_dir, args.runs, args.ping_runs, args.baseline)
    finally:
        if started_here is not None:
            subprocess.run([glue, "down", "--state-dir", str(started_here)], capture_output=True, check=False)
    text = report(runs)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    return 0


def measure(glue: str, state_dir: Path, n: int, ping_runs: int, baseline: Path | None) -> dict[str, list[float]]:
    """Wall-clock seconds of each variant, verify's own `seconds`, check 9's query share, and load averages."""
    stack = json.loads((state_dir / "run" / "stack.json").read_text())
    settings, config = stack["settings"], stack["config"]
    base = [glue, "verify", "--settings", settings, "--config", config, "--state-dir", str(state_dir), "--json"]
    subprocess.run(base, capture_output=True, check=False)  # warm the page cache once
    runs: dict[str, list[float]] = {"load": [os.getloadavg()[0]]}
    trees = {"": None, "baseline_": baseline} if baseline else {"": None}
    for _ in range(n):
        for prefix, tree in trees.items():
            env = {**os.environ, "PYTHONPATH": str(tree)} if tree else None
            seconds, proc = timed(base, env)
            result = json.loads(proc.stdout)
            if result["exit_code"] != 0:
                raise SystemExit(f"verify failed; the benchmark needs a healthy stack:\n{proc.stdout}")
            e2e = result["checks"][8]["details"]
            query = sum(s["seconds"] for s in e2e["steps"] if s["name"] != "form login")
            for key, value in (("full", seconds), ("internal", result["seconds"]), ("query", query)):
                runs.setdefault(prefix + key, []).append(value)
            seconds, proc = timed([*base, "--no-query"], env)
            if json.loads(proc.stdout)["exit_code"] != 0:
                raise SystemExit(f"verify --no-query failed; the benchmark needs a healthy stack:\n{proc.stdout}")
            runs.setdefault(prefix + "no_query", []).append(seconds)
    env = {
        **os.environ,
        "SUPERSET_CONFIG_PATH": config,
        "SUPERSET_HOME": str(Path(config).parent),
        "FLASK_APP": "superset",
    }
    for _ in range(ping_runs):
        seconds, proc = timed([str(BIN / "celery"), "--app=superset.tasks.celery_app:app", "inspect", "ping"], env)
        if "online" not in proc.stdout:
            raise SystemExit(f"celery inspect ping found no worker:\n{proc.stdout}{proc.stderr}")
        runs.setdefault("ping", []).append(seconds)
    runs["load"].append(os.getloadavg()[0])
    return runs


def report(runs: dict[str, list[float]]) -> str:
    full, no_query, internal, query_only, ping = (runs[k] for k in ("full", "no_query", "internal", "query", "ping"))
    load_before, load_after = runs["load"]
    m_full, m_noq, m_ping = statistics.median(full), statistics.median(no_query), statistics.median(ping)
    rest = [f - q for f, q in zip(full, query_only, strict=True)]
    text = f"""# `superset-async verify` speed

Measured {datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")} by `bench/verify_speed.py` on {machine()}.
Load average {load_before:.2f} before, {load_after:.2f} after. A running local demo stack
(Superset 6.1.0, Redis, ClickHouse 18.16, one prefork worker with 2 processes, beat) on the same machine.
Wall-clock of the whole command, interpreter start included.

| what | median and spread |
|---|---|
| `verify` (9 checks, async SQL Lab query and GAQ round trip) | {spread(full)} |
| `verify --no-query` (checks 1-8, check 9 skipped) | {spread(no_query)} |
| `verify`'s own report of its run time (`seconds` in `--json`) | {spread(internal)} |
| of which check 9's queries and GAQ round trip (the end-to-end query itself) | {spread(query_only)} |
| full `verify` minus its end-to-end query (goal: under 2 s) | {spread(rest)} |
| `celery --app=superset.tasks.celery_app:app inspect ping` | {spread(ping)} |

Ratios of medians: `verify --no-query` / `celery inspect ping` = **{m_noq / m_ping:.2f}**;
full `verify` / `celery inspect ping` = **{m_full / m_ping:.2f}**.
"""
    if "baseline_full" in runs:
        b_full, b_noq = runs["baseline_full"], runs["baseline_no_query"]
        b_rest = [f - q for f, q in zip(b_full, runs["baseline_query"], strict=True)]
        r_rest = statistics.median(rest) / statistics.median(b_rest)
        text += f"""
Baseline (`--baseline`, run alternately with the above against the same stack):

| what | baseline | this checkout | ratio of medians |
|---|---|---|---|
| `verify` | {spread(b_full)} | {spread(full)} | {m_full / statistics.median(b_full):.2f} |
| `verify --no-query` | {spread(b_noq)} | {spread(no_query)} | {m_noq / statistics.median(b_noq):.2f} |
| full minus the end-to-end query | {spread(b_rest)} | {spread(rest)} | {r_rest:.2f} |
"""
    return text


if __name__ == "__main__":
    sys.exit(main())
