"""Settings -> superset_config.py, byte for byte reproducible.

The rendered module imports only what Superset's environment has, so that it can be built into the
Nix store at build time. One piece of the glue itself is imported, late, by its FLASK_APP_MUTATOR:
the SQL Lab pending watchdog (sqllab_watchdog.py), which the runner's virtualenv and the Nix
package install next to Superset; with redis.sentinel, the caches name sentinel_cache.py's class as
their CACHE_TYPE, imported by Flask-Caching. It holds no secret: each is read from its file when Superset
imports the module, preferring systemd's $CREDENTIALS_DIRECTORY.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from . import __version__, secret_file_reader
from .loading import settings_digest
from .redis_urls import Dialect, redis_py_tls_query, role_url, sentinel_role_urls, sentinels
from .render_reports import render_reports
from .secret_files import MIN_SECRET_BYTES
from .settings import Settings, secret_file_credential, secret_files
from .sql_lab_lanes import LANES_CONF_KEY, ROUTER, lane_map


def secret_reader_source() -> str:
    """secret_file_reader.py's code without its module docstring: rendered files carry it verbatim,
    so they read secrets by the glue's own rule without importing the glue."""
    text = Path(secret_file_reader.__file__).read_text(encoding="utf-8")
    first = ast.parse(text).body[1].lineno  # body[0] is the docstring
    body = "".join(text.splitlines(keepends=True)[first - 1 :])
    return f"# Copied from superset_async_glue/secret_file_reader.py.\n{body}"


# Runs at import inside Superset: read secrets late, fail with the setting's name and path.
_PRELUDE_TEMPLATE = """\
from __future__ import annotations

from urllib.parse import quote

import redis
from cachelib.redis import RedisCache
from celery.schedules import crontab

# os and Path come with the secret reader below.
{secret_reader}

def _secret(setting: str, path: str, credential: str) -> str:
    return read_secret(f"superset-async: {{setting}}", path, credential)
"""
_PRELUDE = _PRELUDE_TEMPLATE.format(secret_reader=secret_reader_source())


def pyliteral(value: Any, indent: int = 0) -> str:
    """A Python literal for JSON-like data, dict keys sorted, one item per line: stable text."""
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{pad}{pyliteral(k)}: {pyliteral(v, indent + 4)}," for k, v in sorted(value.items())]
        return "{\n" + "\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "()" if isinstance(value, tuple) else "[]"
        items = [f"{pad}{pyliteral(v, indent + 4)}," for v in value]
        opening, closing = ("(", ")") if isinstance(value, tuple) else ("[", "]")
        return opening + "\n" + "\n".join(items) + "\n" + " " * indent + closing
    if isinstance(value, Expr):
        return value.code
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    raise TypeError(f"cannot render {type(value).__name__} as a literal")


class Expr:
    """Python source placed verbatim inside a rendered literal (evaluated at import)."""

    def __init__(self, code: str) -> None:
        self.code = code


def _secret_expr(settings: Settings, credential: str) -> Expr:
    where, path = secret_files(settings)[credential]
    return Expr(f"_secret({where!r}, {path!r}, {credential!r})")


def _url_expr(settings: Settings, db: int, dialect: Dialect) -> Expr:
    code = f"_with_auth({role_url(settings.redis, db, dialect)!r})"
    if dialect == "redis_py" and settings.redis.tls.enabled and settings.redis.tls.key_file:
        code += " + '&ssl_keyfile=' + quote(_REDIS_TLS_KEYFILE)"
    return Expr(code)


def _redis_section(settings: Settings) -> str:
    r = settings.redis
    lines = ["# Redis: credentials are added to each URL at import; see redis_urls.py in the glue."]
    password = _secret_expr(settings, "redis_password").code if r.password_file else "None"
    lines.append(f"_REDIS_PASSWORD = {password}")
    lines.append(f"_REDIS_USERNAME = {r.username!r}")
    if r.tls.enabled and r.tls.key_file:
        _, path = secret_files(settings)["redis_tls_key"]
        lines.append(f"_REDIS_TLS_KEYFILE = secret_path({path!r}, 'redis_tls_key')")
    lines.append(
        "_REDIS_AUTH = (\n"
        "    (quote(_REDIS_USERNAME or '', safe='') + ':' + quote(_REDIS_PASSWORD, safe='') + '@')\n"
        "    if _REDIS_PASSWORD is not None\n"
        "    else ''\n"
        ")\n\n\n"
        "def _with_auth(url: str) -> str:\n"
        "    return url.replace('//', '//' + _REDIS_AUTH, 1)\n"
    )
    return "\n".join(lines + _sentinel_lines(settings))


def _celery_ssl(settings: Settings) -> dict[str, Any] | None:
    tls = settings.redis.tls
    if not tls.enabled:
        return None
    # Celery and kombu take the same keys as redis-py's URL query, with the key file resolved at import.
    options: dict[str, Any] = dict(redis_py_tls_query(settings.redis))
    if tls.key_file:
        options["ssl_keyfile"] = Expr("_REDIS_TLS_KEYFILE")
    return options


def _beat_schedule(settings: Settings) -> dict[str, Any]:
    schedule: dict[str, Any] = {}
    for name, entry in settings.celery.beat_schedule.items():
        c = entry.crontab
        item: dict[str, Any] = {
            "task": entry.task,
            "schedule": Expr(
                f"crontab(minute={c.minute!r}, hour={c.hour!r}, day_of_week={c.day_of_week!r}, "
                f"day_of_month={c.day_of_month!r}, month_of_year={c.month_of_year!r})"
            ),
        }
        if entry.kwargs:
            item["kwargs"] = entry.kwargs
        if entry.expires_seconds:
            item["options"] = {"expires": entry.expires_seconds}
        schedule[name] = item
    return schedule


def feature_flags(settings: Settings) -> dict[str, bool]:
    """Our flags, with the user's free-form flags merged over them."""
    ours = {
        "GLOBAL_ASYNC_QUERIES": settings.global_async_queries.enabled,
        "SQLLAB_BACKEND_PERSISTENCE": settings.sql_lab.backend_persistence,
    }
    return {**ours, **settings.feature_flags}


def task_time_limits(settings: Settings) -> dict[str, int]:
    # 6.1.0's sql_lab.get_sql_results hard-codes soft_time_limit=21600 and never reads
    # SQLLAB_ASYNC_TIME_LIMIT_SEC; Celery task annotations override the decorator's limits.
    soft = settings.sql_lab.async_time_limit_seconds
    return {"soft_time_limit": soft, "time_limit": soft + settings.sql_lab.hard_time_limit_grace_seconds}


# kombu's Redis transport re-delivers a message not acknowledged within visibility_timeout (default
# 3600 s). A message waits unacknowledged while it sits in a worker's prefetch buffer (at most one
# hard time limit, until a child frees) and, with task_acks_late, while it runs (one more): below
# that, a long query would be delivered to a second worker and run twice.
KOMBU_DEFAULT_VISIBILITY_TIMEOUT = 3600
VISIBILITY_MARGIN_SECONDS = 600


def visibility_timeout(settings: Settings) -> int:
    """broker_transport_options.visibility_timeout: two hard time limits plus a margin, never below kombu's default."""
    hard = task_time_limits(settings)["time_limit"]
    return max(KOMBU_DEFAULT_VISIBILITY_TIMEOUT, 2 * hard + VISIBILITY_MARGIN_SECONDS)


def running_timeout_seconds(settings: Settings) -> int:
    """How long a query may stay `running` before the web's watchdog fails it: hard limit plus grace."""
    return task_time_limits(settings)["time_limit"] + settings.sql_lab.running_grace_seconds


def _assign(name: str, value: Any) -> str:
    return f"{name} = {pyliteral(value)}"


def _metadata_uri(settings: Settings) -> str:
    uri = settings.metadata_uri()
    if settings.metadata_db.password_file is None:
        return repr(uri)
    # SQLAlchemy quotes the password correctly for every dialect.
    secret = _secret_expr(settings, "metadata_db_password").code
    return (
        f"__import__('sqlalchemy.engine', fromlist=['make_url']).make_url({uri!r})"
        f".set(password={secret}).render_as_string(hide_password=False)"
    )


def _sqlite_pool(settings: Settings) -> list[str]:
    """A SQLite metadata DB gets a pool of open connections, as SQLAlchemy 2 gives it by default.

    SQLAlchemy 1.4 (Superset 6.1's) opens a SQLite file for every session and closes it after: each
    request and each task step re-reads the schema and, with the write-ahead log bootstrap switches
    the DB to (bootstrap/sqlite_wal.py), checkpoints and deletes the log when its last connection
    closes, which costs the syncs WAL saves. Kept open, a commit syncs the log once (strace: 11 syncs
    per async query instead of 44, 7 per sync query instead of 28; docs/performance.md). The web's
    post-fork hook and Superset's worker_process_init dispose what a forked process inherits, and a
    connection serves one thread at a time (the pool's checkout), which is what check_same_thread
    guards in the sqlite3 module.
    """
    if settings.sqlite_path() is None:
        return []
    pool = "__import__('sqlalchemy.pool', fromlist=['QueuePool']).QueuePool"
    return [
        "# SQLite: connections kept open, so that a commit syncs the write-ahead log once",
        f"SQLALCHEMY_ENGINE_OPTIONS = {{'poolclass': {pool}, 'connect_args': {{'check_same_thread': False}}}}",
    ]


def render_config(settings: Settings) -> str:
    """The complete superset_config.py for `settings`."""
    s, dbs = settings, settings.redis.dbs
    gaq = s.global_async_queries
    header = (
        f'"""superset_config.py for the superset-async stack.\n\n'
        f"Rendered by superset-async-glue {__version__} from settings sha256 {settings_digest(s)}.\n"
        f"Do not edit: change the settings and render again. No secret is written here; each is read\n"
        f"from its file when Superset imports this module ($CREDENTIALS_DIRECTORY first).\n"
        f'"""\n'
    )
    cache = {"CACHE_TYPE": "RedisCache", "CACHE_DEFAULT_TIMEOUT": 86400}
    celery_attrs: dict[str, Any] = {
        "broker_url": _url_expr(s, dbs.broker, "kombu"),
        "result_backend": _url_expr(s, dbs.results, "celery_backend"),
        "imports": tuple(s.celery.imports),
        "worker_prefetch_multiplier": s.celery.worker_prefetch_multiplier,
        "task_acks_late": s.celery.task_acks_late,
        # acks_late alone still acknowledges a task whose worker process was lost; this re-queues it.
        "task_reject_on_worker_lost": s.celery.task_acks_late,
        "broker_transport_options": {"visibility_timeout": visibility_timeout(s)},
        "task_annotations": {"sql_lab.get_sql_results": {"rate_limit": "100/s", **task_time_limits(s)}},
        "beat_schedule": _beat_schedule(s),
        "broker_connection_retry_on_startup": True,
    }
    if s.redis.sentinel is not None:
        celery_attrs |= _sentinel_celery(s, celery_attrs["broker_transport_options"])
    if s.sql_lab.lanes:
        # SQL Lab lanes (sql_lab.lanes): a query on a lane's database goes to the lane's queue, which only
        # that lane's worker consumes. The router is named as a string: Celery imports it on the first task
        # sent, and it loads Superset only for a SQL Lab query, so beat and Flower never do (sql_lab_lanes.py).
        celery_attrs["task_routes"] = (ROUTER,)
        celery_attrs[LANES_CONF_KEY] = lane_map(s)  # database name -> its lane's queue
    if s.flower.enabled:
        # Flower's task counts and runtimes come from the workers' task events (docs/metrics.md).
        celery_attrs["worker_send_task_events"] = True
    if (ssl := _celery_ssl(s)) is not None:
        celery_attrs["broker_use_ssl"] = ssl
        celery_attrs["redis_backend_use_ssl"] = ssl
    celery_body = "\n".join(f"    {k} = {pyliteral(v, 4)}" for k, v in celery_attrs.items())
    parts = [
        header,
        _PRELUDE,
        _redis_section(s),
        "# Flask and the metadata database",
        _assign("SECRET_KEY", _secret_expr(s, "secret_key")),
        _min_length_check("SECRET_KEY", *secret_files(s)["secret_key"]),
        f"SQLALCHEMY_DATABASE_URI = {_metadata_uri(s)}",
        *_sqlite_pool(s),
        _assign("DATA_DIR", s.state_dir),
        _assign("FEATURE_FLAGS", feature_flags(s)),
        "",
        "# SQL Lab: the async limit is enforced by CeleryConfig.task_annotations below",
        _assign("SQLLAB_TIMEOUT", s.sql_lab.timeout_seconds),
        _assign("SQLLAB_ASYNC_TIME_LIMIT_SEC", s.sql_lab.async_time_limit_seconds),
        _assign("SUPERSET_WEBSERVER_TIMEOUT", s.web.timeout_seconds),
        "",
        _watchdog_section(s),
        "",
        "# Caches and results (Redis DB per role: "
        + ", ".join(f"{role} {getattr(dbs, role)}" for role in type(dbs).model_fields)
        + ")",
        _assign(
            "CACHE_CONFIG",
            {**cache, "CACHE_KEY_PREFIX": "superset_cache_", **_cache_redis(s, dbs.cache)},
        ),
        _assign(
            "DATA_CACHE_CONFIG",
            {**cache, "CACHE_KEY_PREFIX": "superset_data_", **_cache_redis(s, dbs.data_cache)},
        ),
        "RESULTS_BACKEND = RedisCache(\n"
        f"    host={_results_client(s)},\n"
        f"    key_prefix='superset_results',\n"
        f"    default_timeout={s.sql_lab.results_timeout_seconds},\n"
        ")",
        "",
        "",
        "class CeleryConfig:",
        celery_body,
        "",
        "",
        "CELERY_CONFIG = CeleryConfig",
        "",
        _gaq_section(s) if gaq.enabled else "# GLOBAL_ASYNC_QUERIES is off (global_async_queries.enabled).",
        "",
        _web_section(s),
        "",
        render_reports(s),
        "",
        _stats_logger(s),
    ]
    if s.secret_files:
        parts += ["", _secret_files_section(s)]
    if s.extra_config.strip():
        parts += ["", "# extra_config from the settings (verbatim)", s.extra_config.rstrip("\n")]
    return "\n".join(parts).rstrip("\n") + "\n"


def _stats_logger(s: Settings) -> str:
    m = s.metrics
    if m.statsd_host is None:
        return "# STATS_LOGGER: Superset's DummyStatsLogger (metrics.statsd_host is unset)."
    return "\n".join(
        [
            "# Superset's counters and timers over UDP to StatsD (docs/metrics.md). Only inside Superset (web,",
            "# worker): beat, Flower and verify import this file without Superset, and importing",
            "# superset.stats_logger would load all of it there.",
            "if 'superset' in __import__('sys').modules:",
            "    from superset.stats_logger import StatsdStatsLogger",
            "",
            f"    STATS_LOGGER = StatsdStatsLogger(host={pyliteral(m.statsd_host)}, port={m.statsd_port}, "
            f"prefix={pyliteral(m.statsd_prefix)})",
        ]
    )


def _watchdog_section(s: Settings) -> str:
    # A user's FLASK_APP_MUTATOR in extra_config replaces this one (docs/settings.md says so).
    return "\n".join(
        [
            "# SQL Lab pending watchdog (sql_lab.pending_timeout_seconds): in each web process, async queries",
            "# pending longer than this while no Celery worker answers a ping end failed, not pending forever;",
            "# queries running longer than the hard time limit plus sql_lab.running_grace_seconds end failed too.",
            "# In the worker, a query whose worker process was lost ends failed at once (task_failure).",
            _assign("SUPERSET_ASYNC_SQLLAB_PENDING_TIMEOUT_SECONDS", s.sql_lab.pending_timeout_seconds),
            _assign("SUPERSET_ASYNC_SQLLAB_RUNNING_TIMEOUT_SECONDS", running_timeout_seconds(s)),
            "",
            "",
            "def _limit_login_form(app):",
            "    # Superset 6.1 applies AUTH_RATE_LIMIT to its own login page (GET only) and keeps FAB from limiting",
            "    # the view that takes the form's POST (AuthDBView), so password guesses were never limited.",
            "    if not app.config.get('AUTH_RATE_LIMITED'):",
            "        return",
            "    sm = app.appbuilder.sm",
            "    blueprint = getattr(getattr(sm, 'auth_view', None), 'blueprint', None)",
            "    if blueprint is not None:",
            "        sm.limiter.limit(app.config['AUTH_RATE_LIMIT'], methods=['POST'])(blueprint)",
            "",
            "",
            "def FLASK_APP_MUTATOR(app):",
            "    _limit_login_form(app)",
            "    try:",
            "        from superset_async_glue.sqllab_watchdog import install",
            "    except ImportError as err:  # Superset still runs; only the watchdog is missing",
            "        app.logger.error('superset-async: SQL Lab pending watchdog not installed: %s', err)",
            "        return",
            "    install(",
            "        app,",
            "        SUPERSET_ASYNC_SQLLAB_PENDING_TIMEOUT_SECONDS,",
            "        running_timeout_seconds=SUPERSET_ASYNC_SQLLAB_RUNNING_TIMEOUT_SECONDS,",
            "    )",
            "",
        ]
    )


def _gaq_section(s: Settings) -> str:
    gaq, r = s.global_async_queries, s.redis
    # Superset's GAQ backend builds redis.Redis(host=, port=) itself: it cannot use a unix socket.
    backend: dict[str, Any] = {
        "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_HOST": r.host,
        "CACHE_REDIS_PORT": r.port,
        "CACHE_REDIS_DB": r.dbs.async_events,
        "CACHE_REDIS_PASSWORD": Expr("_REDIS_PASSWORD"),
        "CACHE_REDIS_USER": r.username or "",
        "CACHE_REDIS_SSL": r.tls.enabled,
    }
    if r.tls.enabled:
        backend |= {
            "CACHE_REDIS_SSL_CERT_REQS": r.tls.verify,
            "CACHE_REDIS_SSL_CA_CERTS": r.tls.ca_file,
            "CACHE_REDIS_SSL_CERTFILE": r.tls.cert_file,
            "CACHE_REDIS_SSL_KEYFILE": Expr("_REDIS_TLS_KEYFILE") if r.tls.key_file else None,
        }
    if r.sentinel is not None:
        backend = _sentinel_gaq(s)
    where, path = secret_files(s)["gaq_jwt_secret"]
    return "\n".join(
        [
            "# GLOBAL_ASYNC_QUERIES (transport: polling)",
            _assign("GLOBAL_ASYNC_QUERIES_JWT_SECRET", _secret_expr(s, "gaq_jwt_secret")),
            _min_length_check("GLOBAL_ASYNC_QUERIES_JWT_SECRET", where, path),
            _assign("GLOBAL_ASYNC_QUERIES_TRANSPORT", gaq.transport),
            _assign("GLOBAL_ASYNC_QUERIES_POLLING_DELAY", gaq.polling_delay_ms),
            _assign("GLOBAL_ASYNC_QUERIES_JWT_COOKIE_SECURE", gaq.jwt_cookie_secure or s.web.public_url is not None),
            _assign("GLOBAL_ASYNC_QUERIES_CACHE_BACKEND", backend),
        ]
    )


def _min_length_check(name: str, where: str, path: str) -> str:
    # Checked again at import: the file may have changed since `check` (or been absent at render time).
    first = f"superset-async: {where}: the secret in {path} is shorter than {MIN_SECRET_BYTES} bytes; "
    return "\n".join(
        [
            f"if len({name}.encode()) < {MIN_SECRET_BYTES}:",
            "    raise SecretFileError(",
            f"        {first!r}",
            f"        {'write a longer one, e.g. openssl rand -base64 48 > FILE'!r}",
            "    )",
        ]
    )


# Superset's own PROXY_FIX_CONFIG: one proxy's X-Forwarded-For, -Proto, -Host, -Port and -Prefix.
PROXY_FIX_CONFIG = {"x_for": 1, "x_proto": 1, "x_host": 1, "x_port": 1, "x_prefix": 1}
RATE_LIMIT_KEY_PREFIX = "superset_ratelimit"


def _rate_limit_storage(s: Settings) -> Expr | str:
    if s.redis.sentinel is not None:
        # limits' Sentinel storage: credentials and DB in RATELIMIT_STORAGE_OPTIONS, not in the URL.
        hosts = ",".join(u.removeprefix("sentinel://").rsplit("/", 1)[0] for u in sentinel_role_urls(s.redis, 0))
        return f"redis+sentinel://{hosts}/{s.redis.sentinel.master_name}"
    url = _url_expr(s, s.redis.dbs.cache, "redis_py")
    # limits spells redis-py's unix:// as redis+unix://
    return Expr(f"'redis+' + {url.code}") if s.redis.unix_socket else url


def _web_section(s: Settings) -> str:
    w = s.web
    lines = [
        "# Web: login rate limiting. Flask-Limiter keeps its counters in Redis (the cache DB, key prefix",
        f"# {RATE_LIMIT_KEY_PREFIX}: short-lived data a flush may lose), so every gunicorn worker counts together.",
        _assign("RATELIMIT_ENABLED", True),
        _assign("AUTH_RATE_LIMITED", True),
        _assign("AUTH_RATE_LIMIT", w.login_rate_limit),
        "# No application-wide limit: one per client address would throttle SQL Lab's polling and every user",
        "# behind one proxy address together; limit the whole site at the proxy if needed.",
        _assign("RATELIMIT_APPLICATION", None),
        _assign("RATELIMIT_STORAGE_URI", _rate_limit_storage(s)),
        *([_assign("RATELIMIT_STORAGE_OPTIONS", _sentinel_rate_limit_options(s))] if s.redis.sentinel else []),
        _assign("RATELIMIT_KEY_PREFIX", RATE_LIMIT_KEY_PREFIX),
        "# Redis unreachable: each worker counts in memory meanwhile, and the login form still answers",
        "# (without this, every login POST would fail with HTTP 500 while Redis is down).",
        _assign("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True),
        _assign("RATELIMIT_SWALLOW_ERRORS", True),
    ]
    if w.public_url is None:
        lines.append("# web.public_url is unset: cookies are not marked Secure and no proxy headers are trusted.")
        return "\n".join(lines)
    return "\n".join(
        [
            *lines,
            "",
            f"# Served over HTTPS at {w.public_url} (web.public_url) by one TLS proxy in front:",
            "# cookies only over TLS; the proxy's X-Forwarded-* headers trusted (client address for the rate",
            "# limit, https for Flask), which also makes Talisman send HSTS (Superset's TALISMAN_CONFIG keeps",
            "# flask-talisman's strict_transport_security, one year, on secure requests).",
            _assign("SESSION_COOKIE_SECURE", True),
            _assign("ENABLE_PROXY_FIX", True),
            _assign("PROXY_FIX_CONFIG", PROXY_FIX_CONFIG),
            _assign("WEBDRIVER_BASEURL_USER_FRIENDLY", w.public_url),
        ]
    )


def _secret_files_section(s: Settings) -> str:
    lines = ["# secret_files: other Superset keys read from files at import ($CREDENTIALS_DIRECTORY first)"]
    for key in sorted(s.secret_files):
        lines.append(_assign(key, _secret_expr(s, secret_file_credential(key))))
    return "\n".join(lines)


# -- Redis Sentinel (redis.sentinel; docs/production.md, with each library's evidence) ---------------
# Every client asks the Sentinels for the master of redis.sentinel.master_name and follows a failover
# without a restart. Each library passes the Sentinels' password differently, and two of them would
# send the data password to the Sentinels by default: every client here gets _REDIS_SENTINEL_KWARGS.
SENTINEL_TIMEOUT_SECONDS = 2.0  # a Sentinel that does not answer is skipped after this, the next asked


def _sentinel_lines(s: Settings) -> list[str]:
    sentinel = s.redis.sentinel
    if sentinel is None:
        return []
    password = _secret_expr(s, "redis_sentinel_password").code if sentinel.password_file else "None"
    timeout = SENTINEL_TIMEOUT_SECONDS
    return [
        "",
        "# Redis Sentinel: clients ask these Sentinels for the master; the data password is _REDIS_PASSWORD.",
        "# The caches read from the master too (superset_async_glue.sentinel_cache): upstream's class reads a",
        "# replica, which may not yet have the chart data GLOBAL_ASYNC_QUERIES hands over a moment after the",
        "# worker wrote it. Superset's Sentinel GAQ backend ignores CACHE_REDIS_DB: its streams are in DB 0.",
        _assign("_REDIS_SENTINELS", [tuple(a) for a in sentinels(s.redis)]),
        _assign("_REDIS_SENTINEL_MASTER", sentinel.master_name),
        f"_REDIS_SENTINEL_PASSWORD = {password}",
        "_REDIS_SENTINEL_KWARGS = {'password': _REDIS_SENTINEL_PASSWORD, "
        f"'socket_connect_timeout': {timeout}, 'socket_timeout': {timeout}}}",
        "",
        "",
        "def _sentinel_urls(urls: list[str]) -> str:",
        "    # kombu and Celery's result backend: one sentinel:// URL per Sentinel, joined by ';'.",
        "    return ';'.join(_with_auth(url) for url in urls)",
        "",
    ]


def _sentinel_urls_expr(s: Settings, db: int) -> Expr:
    return Expr(f"_sentinel_urls({sentinel_role_urls(s.redis, db)!r})")


def _sentinel_celery(s: Settings, broker_options: dict[str, Any]) -> dict[str, Any]:
    assert s.redis.sentinel is not None  # noqa: S101 - called only with Sentinel
    # master_name is required by both (kombu raises ValueError without it); visibility_timeout stays.
    options = {"master_name": s.redis.sentinel.master_name, "sentinel_kwargs": Expr("_REDIS_SENTINEL_KWARGS")}
    return {
        "broker_url": _sentinel_urls_expr(s, s.redis.dbs.broker),
        "result_backend": _sentinel_urls_expr(s, s.redis.dbs.results),
        "broker_transport_options": {**broker_options, **options},
        "result_backend_transport_options": options,
    }


def _cache_redis(s: Settings, db: int) -> dict[str, Any]:
    if s.redis.sentinel is None:
        return {"CACHE_REDIS_URL": _url_expr(s, db, "redis_py")}
    return {
        # Upstream's RedisSentinelCache reads from a replica, which may not have a value the master took a
        # moment before (GAQ hands chart data through DATA_CACHE_CONFIG): this subclass reads from the master.
        "CACHE_TYPE": "superset_async_glue.sentinel_cache.MasterSentinelCache",
        "CACHE_REDIS_SENTINELS": Expr("_REDIS_SENTINELS"),
        "CACHE_REDIS_SENTINEL_MASTER": Expr("_REDIS_SENTINEL_MASTER"),
        "CACHE_REDIS_SENTINEL_PASSWORD": Expr("_REDIS_SENTINEL_PASSWORD"),
        "CACHE_REDIS_PASSWORD": Expr("_REDIS_PASSWORD"),
        "CACHE_REDIS_DB": db,
        # Flask-Caching passes sentinel_* options to the Sentinel connections only.
        "CACHE_OPTIONS": {
            "sentinel_socket_connect_timeout": SENTINEL_TIMEOUT_SECONDS,
            "sentinel_socket_timeout": SENTINEL_TIMEOUT_SECONDS,
        },
    }


def _results_client(s: Settings) -> str:
    if s.redis.sentinel is None:
        return f"redis.Redis.from_url({_url_expr(s, s.redis.dbs.results, 'redis_py').code})"
    # cachelib's RedisCache takes any redis-py client as host: one that follows the master.
    return (
        "redis.sentinel.Sentinel(\n"
        "        _REDIS_SENTINELS,\n"
        "        sentinel_kwargs=_REDIS_SENTINEL_KWARGS,\n"
        "        password=_REDIS_PASSWORD,\n"
        f"        db={s.redis.dbs.results},\n"
        "    ).master_for(_REDIS_SENTINEL_MASTER)"
    )


def _sentinel_gaq(s: Settings) -> dict[str, Any]:
    # Superset's RedisSentinelCacheBackend writes the streams to the master, always in DB 0: it passes no
    # db to master_for (settings.py requires redis.dbs.async_events = 0 to say so).
    return {
        "CACHE_TYPE": "RedisSentinelCache",
        "CACHE_REDIS_SENTINELS": Expr("_REDIS_SENTINELS"),
        "CACHE_REDIS_SENTINEL_MASTER": Expr("_REDIS_SENTINEL_MASTER"),
        "CACHE_REDIS_SENTINEL_PASSWORD": Expr("_REDIS_SENTINEL_PASSWORD"),
        "CACHE_REDIS_PASSWORD": Expr("_REDIS_PASSWORD"),
        "CACHE_REDIS_DB": 0,
    }


def _sentinel_rate_limit_options(s: Settings) -> dict[str, Any]:
    # limits would send the data password to the Sentinels (sentinel_kwargs defaults to it) and read the
    # counters from a replica: give it the Sentinels' own password, and the master for every read.
    return {
        "password": Expr("_REDIS_PASSWORD"),
        "db": s.redis.dbs.cache,
        "sentinel_kwargs": Expr("_REDIS_SENTINEL_KWARGS"),
        "use_replicas": False,
    }
