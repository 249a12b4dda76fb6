"""The embedded demo: settings with generated secrets, and a small table seeded into ClickHouse."""

from __future__ import annotations

import json
from pathlib import Path

import requests

from ..errors import GlueError
from ..loading import load_settings
from ..secret_io import ensure_secret, read_secret
from .clickhouse_server import ClickHousePlan

DEMO_DATABASE_NAME = "ClickHouse (demo)"
DEMO_TABLE = "cities"
# (id, name, country, population): what `SELECT * FROM demo.cities ORDER BY id` returns; tests compare.
DEMO_ROWS: tuple[tuple[int, str, str, int], ...] = (
    (1, "Tokyo", "Japan", 37400068),
    (2, "Delhi", "India", 28514000),
    (3, "Shanghai", "China", 25582000),
    (4, "São Paulo", "Brazil", 21650000),
    (5, "Mexico City", "Mexico", 21581000),
    (6, "Cairo", "Egypt", 20076000),
    (7, "Madrid", "Spain", 6642000),
    (8, "Buenos Aires", "Argentina", 15154000),
)


def demo_settings(state_dir: Path, web_port: int, redis_port: int, clickhouse_http_port: int) -> Path:
    """Write state_dir/settings.json for the demo, with secrets generated under state_dir/secrets (0600).

    An existing settings.json is kept as it is (its ports and secrets stay stable across runs).
    """
    path = state_dir / "settings.json"
    if path.exists():
        return path
    secrets_dir = state_dir / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    secrets_dir.chmod(0o700)
    secret = {
        name: str(ensure_secret(secrets_dir / name))
        for name in ("secret_key", "gaq_jwt_secret", "admin_password", "redis_password", "clickhouse_password")
    }
    data = {
        "state_dir": str(state_dir),
        "secret_key_file": secret["secret_key"],
        "global_async_queries": {"jwt_secret_file": secret["gaq_jwt_secret"]},
        "admin": {"username": "admin", "password_file": secret["admin_password"]},
        "redis": {"host": "127.0.0.1", "port": redis_port, "password_file": secret["redis_password"]},
        "web": {"bind": "127.0.0.1", "port": web_port},
        "worker": {"concurrency": 2},
        "databases": [
            {
                "name": DEMO_DATABASE_NAME,
                "uri": f"clickhousedb://superset@127.0.0.1:{clickhouse_http_port}/demo",
                "password_file": secret["clickhouse_password"],
                "allow_run_async": True,
                "expose_in_sqllab": True,
            }
        ],
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    load_settings(path)  # what we write must validate
    return path


def _auth(plan: ClickHousePlan) -> tuple[str, str]:
    password = read_secret("clickhouse password_file", plan.password_file) if plan.password_file else ""
    return (plan.user, password)


def clickhouse_ping(plan: ClickHousePlan, timeout: float = 1.0) -> bool:
    try:
        # .content: ClickHouse sends no charset, and requests would guess one for "Ok.\n".
        return requests.get(f"{plan.url}/ping", timeout=timeout).content.strip() == b"Ok."
    except requests.RequestException:
        return False


def clickhouse_query(plan: ClickHousePlan, sql: str, timeout: float = 30) -> str:
    """Run one statement over ClickHouse's HTTP interface as the declared user."""
    response = requests.post(plan.url, data=sql.encode(), auth=_auth(plan), timeout=timeout)
    text = response.content.decode("utf-8", errors="replace")
    if response.status_code != 200:
        raise GlueError(f"ClickHouse answered {response.status_code} to {sql.split(maxsplit=1)[0]}: {text.strip()}")
    return text


def seed_demo(plan: ClickHousePlan) -> str:
    """Create `<database>.cities` with DEMO_ROWS unless it already holds them; say what was done."""
    db = plan.database
    clickhouse_query(plan, f"CREATE DATABASE IF NOT EXISTS `{db}`")
    clickhouse_query(
        plan,
        f"CREATE TABLE IF NOT EXISTS `{db}`.{DEMO_TABLE} (id UInt32, name String, country String, "
        "population UInt64) ENGINE = MergeTree() ORDER BY id",
    )
    # S608: the names are the declared URI's database and our constant, quoted; no user input.
    count = int(clickhouse_query(plan, f"SELECT count() FROM `{db}`.{DEMO_TABLE}").strip() or 0)  # noqa: S608
    if count:
        return f"{db}.{DEMO_TABLE} has {count} rows (unchanged)"
    values = ", ".join(f"({i}, {_sql_string(n)}, {_sql_string(c)}, {p})" for i, n, c, p in DEMO_ROWS)
    clickhouse_query(plan, f"INSERT INTO `{db}`.{DEMO_TABLE} VALUES {values}")  # noqa: S608
    return f"{db}.{DEMO_TABLE} seeded with {len(DEMO_ROWS)} rows"


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
