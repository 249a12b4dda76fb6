"""The typed settings of the async stack: one schema for the renderer, bootstrap, runner, verify and the NixOS module.

Upstream's names are kept where a setting maps onto a Superset or Celery key, so that upstream's
documentation applies (https://superset.apache.org/docs/configuration/async-queries-celery).
Secrets are only ever paths to files; the values are read at run time, never here.
"""

from __future__ import annotations

import functools
import re
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from .settings_monitoring import FLOWER_PASSWORD_CREDENTIAL, Flower, Metrics
from .settings_reports import Reports, reports_problem
from .sql_lab_lanes import lane_queue

# Keys a user may write when they mean the *_file variant: reported as "secrets are never inline"
# rather than "unknown key". Keep in step with the *_file fields below.
INLINE_SECRET_KEYS = {
    "secret_key": "secret_key_file",
    "password": "password_file",
    "jwt_secret": "jwt_secret_file",
    "gaq_jwt_secret": "jwt_secret_file",
}

# Feature flags other settings depend on: set through their owning setting, never directly.
OWNED_FEATURE_FLAGS = {
    "GLOBAL_ASYNC_QUERIES": "global_async_queries.enabled",
    "SQLLAB_BACKEND_PERSISTENCE": "sql_lab.backend_persistence",
    "ALERT_REPORTS": "reports.enabled",
}

REDIS_ROLES = ("broker", "results", "cache", "data_cache", "async_events")

# secret_files keys: Superset config names, at most 64 characters (a systemd credential name is built from it).
SECRET_FILE_KEY = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
# Every config key the rendered superset_config.py assigns, and the setting that controls it: never
# a secret_files key (tests/python/test_render.py keeps this in step with the renderer).
_WEB = "web.public_url / web.login_rate_limit"
_REPORTS = "reports.*"
MANAGED_CONFIG_KEYS = {
    "SECRET_KEY": "secret_key_file",
    "GLOBAL_ASYNC_QUERIES_JWT_SECRET": "global_async_queries.jwt_secret_file",
    "SQLALCHEMY_DATABASE_URI": "metadata_db.password_file",
    "CACHE_CONFIG": "redis.password_file",
    "DATA_CACHE_CONFIG": "redis.password_file",
    "RESULTS_BACKEND": "redis.password_file",
    "CELERY_CONFIG": "redis.password_file",
    "GLOBAL_ASYNC_QUERIES_CACHE_BACKEND": "redis.password_file",
    "RATELIMIT_STORAGE_URI": "redis.password_file",
    "RATELIMIT_STORAGE_OPTIONS": "redis.sentinel",
    "SMTP_PASSWORD": "reports.smtp.password_file",
    "SLACK_API_TOKEN": "reports.slack.token_file",
    "DATA_DIR": "state_dir",
    "SQLALCHEMY_ENGINE_OPTIONS": "metadata_db.uri",  # a SQLite file's pool (render.py)
    "STATS_LOGGER": "metrics.statsd_host",
    "FEATURE_FLAGS": "feature_flags",
    "SQLLAB_TIMEOUT": "sql_lab.timeout_seconds",
    "SQLLAB_ASYNC_TIME_LIMIT_SEC": "sql_lab.async_time_limit_seconds",
    "SUPERSET_WEBSERVER_TIMEOUT": "web.timeout_seconds",
    "SUPERSET_ASYNC_SQLLAB_PENDING_TIMEOUT_SECONDS": "sql_lab.pending_timeout_seconds",
    "SUPERSET_ASYNC_SQLLAB_RUNNING_TIMEOUT_SECONDS": "sql_lab.running_grace_seconds",
    "GLOBAL_ASYNC_QUERIES_TRANSPORT": "global_async_queries.transport",
    "GLOBAL_ASYNC_QUERIES_POLLING_DELAY": "global_async_queries.polling_delay_ms",
    "GLOBAL_ASYNC_QUERIES_JWT_COOKIE_SECURE": "web.public_url",
    **dict.fromkeys(
        (
            "AUTH_RATE_LIMIT",
            "AUTH_RATE_LIMITED",
            "RATELIMIT_APPLICATION",
            "RATELIMIT_ENABLED",
            "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED",
            "RATELIMIT_KEY_PREFIX",
            "RATELIMIT_SWALLOW_ERRORS",
            "SESSION_COOKIE_SECURE",
            "ENABLE_PROXY_FIX",
            "PROXY_FIX_CONFIG",
            "WEBDRIVER_BASEURL_USER_FRIENDLY",
        ),
        _WEB,
    ),
    **dict.fromkeys(
        (
            "ALERT_REPORTS_NOTIFICATION_DRY_RUN",
            "CELERY_BEAT_SCHEDULER_EXPIRES",
            "SCREENSHOT_LOAD_WAIT",
            "SCREENSHOT_LOCATE_WAIT",
            "SCREENSHOT_SELENIUM_ANIMATION_WAIT",
            "SCREENSHOT_SELENIUM_HEADSTART",
            "SMTP_HOST",
            "SMTP_MAIL_FROM",
            "SMTP_PORT",
            "SMTP_SSL",
            "SMTP_SSL_SERVER_AUTH",
            "SMTP_STARTTLS",
            "SMTP_USER",
            "WEBDRIVER_BASEURL",
            "WEBDRIVER_CONFIGURATION",
            "WEBDRIVER_OPTION_ARGS",
            "WEBDRIVER_TYPE",
        ),
        _REPORTS,
    ),
}


class LocatedValueError(ValueError):
    """A validation failure of a field other than the one being validated (cross-field checks)."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(message)
        self.location = location


# Values written into another program's configuration (redis.conf, ClickHouse's XML, URLs, gunicorn's
# and celery's argv) must not be able to end a line, a token or a URL part there: each field below
# takes only what its target can hold literally.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Host names, IPv4 and IPv6 addresses: no URL delimiters (?#/@[]%), no whitespace.
_HOST = re.compile(r"^[A-Za-z0-9_.:-]{1,253}$")
# Redis ACL users, Celery queues: one token, no separator of the formats they are written into.
_TOKEN = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_DOTTED_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# A unix socket path must fit sockaddr_un.sun_path (108 bytes with its terminating NUL).
MAX_SOCKET_PATH_BYTES = 107


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("contains a control character (newline, tab, NUL, ...); remove it")
    return value


def _absolute_path(value: str) -> str:
    if not value.startswith("/") or _CONTROL.search(value):
        raise ValueError(
            "expected an absolute path (no control characters) to a file that holds the secret "
            "(e.g. /run/keys/superset-secret); never put the secret itself in the settings"
        )
    return str(PurePosixPath(value))


def _plain_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("expected an absolute path (starting with /)")
    _no_control(value)
    return str(PurePosixPath(value))


def _host(value: str) -> str:
    if not _HOST.match(value):
        raise ValueError(
            "expected a bare host name or IP address (letters, digits, '.', '-', '_', ':' for IPv6); "
            "a URL, credentials, whitespace or any of ? # / @ % [ ] do not belong here"
            + (" (set username and password_file instead)" if "@" in value else "")
        )
    return value


def _token(value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError("expected 1-128 letters, digits, '.', '-' or '_' (no whitespace or other punctuation)")
    return value


def _dotted_name(value: str) -> str:
    if not _DOTTED_NAME.match(value):
        raise ValueError("expected a dotted Python name such as superset.sql_lab")
    return value


def _no_url_delimiters(value: str) -> str:
    if "?" in value or "#" in value:
        raise ValueError("contains ? or #, which would end the path in the SQLite URI built from it; rename it")
    return value


def _socket_path(value: str) -> str:
    if len(value.encode()) > MAX_SOCKET_PATH_BYTES:
        raise ValueError(
            f"is longer than {MAX_SOCKET_PATH_BYTES} bytes, the limit of a unix socket path; use a shorter one"
        )
    return value


# "secret_file" marks the key in the JSON schema, from which the NixOS module's contract is generated
# (superset_async_glue/contract.py): the module checks that no such path lies in the Nix store.
SecretFile = Annotated[str, AfterValidator(_absolute_path), Field(json_schema_extra={"secret_file": True})]
AbsolutePath = Annotated[str, AfterValidator(_plain_path)]
# The state dir is also part of the default SQLite URI, where ? and # would start a query or fragment.
StateDir = Annotated[str, AfterValidator(_plain_path), AfterValidator(_no_url_delimiters)]
SocketPath = Annotated[str, AfterValidator(_plain_path), AfterValidator(_socket_path)]
Host = Annotated[str, AfterValidator(_host)]
Token = Annotated[str, AfterValidator(_token)]
DottedName = Annotated[str, AfterValidator(_dotted_name)]
Text = Annotated[str, AfterValidator(_no_control)]
Seconds = Annotated[int, Field(gt=0, le=7 * 24 * 3600)]


def _defaults() -> Any:
    # An empty mapping, validated like user input (validate_default), so that errors in a section's
    # defaults carry that section's location.
    return {}


class Model(BaseModel):
    """Base: unknown keys are errors (an inline secret gets a precise one, see loading.py); immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class RedisTLS(Model):
    """TLS towards Redis (rediss://)."""

    enabled: bool = Field(False, description="Connect with rediss:// (TLS).")
    ca_file: AbsolutePath | None = Field(None, description="CA bundle that signed the Redis server certificate.")
    cert_file: AbsolutePath | None = Field(None, description="Client certificate, when Redis asks for one.")
    key_file: SecretFile | None = Field(None, description="Client key (a secret file).")
    verify: Literal["required", "optional", "none"] = Field("required", description="ssl_cert_reqs.")


class RedisDBs(Model):
    """The Redis database number of each role; no two roles may share one."""

    broker: int = Field(0, ge=0, le=15, description="Celery broker (the queue SQL Lab publishes to).")
    results: int = Field(1, ge=0, le=15, description="SQL Lab results (RESULTS_BACKEND) and Celery results.")
    cache: int = Field(2, ge=0, le=15, description="CACHE_CONFIG (metadata cache).")
    data_cache: int = Field(3, ge=0, le=15, description="DATA_CACHE_CONFIG (chart data).")
    async_events: int = Field(4, ge=0, le=15, description="GLOBAL_ASYNC_QUERIES event streams.")

    @model_validator(mode="after")
    def _distinct(self) -> RedisDBs:
        seen: dict[int, str] = {}
        for role in REDIS_ROLES:
            db = getattr(self, role)
            if db in seen:
                raise LocatedValueError(
                    role,
                    f"roles '{seen[db]}' and '{role}' share Redis DB {db}; give each role its own DB "
                    "(defaults: broker 0, results 1, cache 2, data_cache 3, async_events 4)",
                )
            seen[db] = role
        return self


_SENTINEL_ADDRESS = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]{1,253})):(?P<port>[0-9]{1,5})$")


def sentinel_address(value: str) -> tuple[str, int]:
    """("host", port) of a "host:port" or "[v6]:port" Sentinel address (validated by RedisSentinel)."""
    match = _SENTINEL_ADDRESS.match(value)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise ValueError(
            f"{value!r} is not host:port; write each Sentinel as host:port (e.g. 10.0.0.5:26379, [fd00::5]:26379)"
        )
    return match["v6"] or match["host"], int(match["port"])


def _sentinel_address(value: str) -> str:
    sentinel_address(value)
    return value


class RedisSentinel(Model):
    """Redis Sentinel: the clients ask these Sentinels for the master of `master_name` (docs/production.md)."""

    master_name: Token = Field(description="The master's name in the Sentinels' configuration (sentinel monitor NAME).")
    sentinels: tuple[Annotated[str, AfterValidator(_sentinel_address)], ...] = Field(
        description="Sentinel addresses as host:port ([v6]:port for IPv6); list every Sentinel, at least one."
    )
    password_file: SecretFile | None = Field(
        None,
        description="File holding the Sentinels' own password (requirepass in sentinel.conf); the data nodes' "
        "password stays redis.password_file.",
    )

    @field_validator("sentinels")
    @classmethod
    def _some_sentinels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError('is empty; list every Sentinel as host:port, e.g. ["10.0.0.5:26379"]')
        if len(set(value)) != len(value):
            raise ValueError("lists a Sentinel twice; list each once")
        return value


class Redis(Model):
    """How every process reaches Redis."""

    host: Host = Field("127.0.0.1", description="TCP host (always used by GAQ, see docs).")
    port: int = Field(6379, ge=1, le=65535, description="TCP port.")
    unix_socket: SocketPath | None = Field(
        None, description="Unix socket; when set, broker, results and caches use it instead of TCP."
    )
    username: Token | None = Field(None, description="Redis ACL user (Redis 6+; letters, digits, '.', '-', '_').")
    password_file: SecretFile | None = Field(None, description="File holding the Redis password (requirepass).")
    tls: RedisTLS = Field(default_factory=_defaults)
    dbs: RedisDBs = Field(default_factory=_defaults)
    sentinel: RedisSentinel | None = Field(
        None, description="Reach Redis through Sentinel (host and port are then unused); docs/production.md."
    )

    @model_validator(mode="after")
    def _sentinel_alone(self) -> Redis:
        if self.sentinel is None:
            return self
        if self.unix_socket is not None:
            raise LocatedValueError(
                "unix_socket",
                "is set together with redis.sentinel: Sentinel hands out the master's TCP address, so no client "
                "would use the socket; remove redis.unix_socket (or redis.sentinel)",
            )
        if self.username is not None:
            raise LocatedValueError(
                "username",
                "is set together with redis.sentinel: Superset's Sentinel backend for GLOBAL_ASYNC_QUERIES sends no "
                "user name, so it would fail to log in; with Sentinel use the default user's password "
                "(requirepass, redis.password_file) and remove redis.username",
            )
        if self.tls.enabled:
            raise LocatedValueError(
                "tls.enabled",
                "TLS with redis.sentinel is not supported by this stack yet (untested); use Sentinel without TLS "
                "on a private network, or one Redis with TLS",
            )
        return self


class MetadataDB(Model):
    """Superset's metadata database (SQLALCHEMY_DATABASE_URI)."""

    uri: str | None = Field(
        None,
        description="SQLAlchemy URI without a password; default: SQLite file superset.db in state_dir.",
    )
    password_file: SecretFile | None = Field(None, description="File holding the metadata DB password.")
    local_postgresql: bool = Field(
        False,
        description=(
            "`superset-async up` only: run a PostgreSQL of its own (Debian's) for the metadata DB, on"
            " state_dir/postgresql, socket only, peer authentication, no password (docs/runner.md). Leave uri and"
            " password_file unset. Under NixOS use metadataDatabase.createLocally instead."
        ),
    )
    backups_kept: int = Field(
        5,
        ge=0,
        description=(
            "Before migrations change it, bootstrap dumps the metadata DB into state_dir/backups and keeps this many"
            " newest dumps (0: no dumps). See docs/upgrades.md."
        ),
    )

    @field_validator("uri")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value is not None:
            _check_uri(value)
        return value

    @model_validator(mode="after")
    def _local_postgresql_alone(self) -> MetadataDB:
        if self.local_postgresql and self.uri is not None:
            raise LocatedValueError(
                "local_postgresql",
                "is true and metadata_db.uri is set: the runner's own PostgreSQL makes the URI; remove"
                " metadata_db.uri, or set metadata_db.local_postgresql to false to use that URI",
            )
        if self.local_postgresql and self.password_file is not None:
            raise LocatedValueError(
                "password_file",
                "is set but metadata_db.local_postgresql is true, whose PostgreSQL has no password (peer"
                " authentication over its socket); remove metadata_db.password_file",
            )
        return self

    @model_validator(mode="after")
    def _password_needs_server(self) -> MetadataDB:
        if self.password_file and (self.uri is None or self.uri.startswith("sqlite")):
            raise LocatedValueError("password_file", "is set but the metadata DB is SQLite, which takes no password")
        return self


# Runs of these become "_" in a credential name; the NixOS module applies the same pattern (contract.py).
CREDENTIAL_SLUG_SEPARATORS = r"[^A-Za-z0-9]+"


_SECRET_NAME = re.compile(r"password|passwd|secret|token|private_key", re.IGNORECASE)


def _secret_looking_key(value: Any, path: str = "") -> str | None:
    """The dotted location of the first key that names a secret and holds a non-empty string."""
    if isinstance(value, dict):
        for key, inner in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _SECRET_NAME.search(str(key)) and isinstance(inner, str) and inner:
                return where
            if (found := _secret_looking_key(inner, where)) is not None:
                return found
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            if (found := _secret_looking_key(inner, f"{path}[{index}]")) is not None:
                return found
    return None


def credential_slug(name: str) -> str:
    """A database name as it appears in a systemd credential name (letters, digits, underscore)."""
    return re.sub(CREDENTIAL_SLUG_SEPARATORS, "_", name).strip("_").lower()


def _check_uri(value: str) -> None:
    if _CONTROL.search(value) or re.search(r"\s", value):
        raise ValueError("contains whitespace or a control character; percent-encode it (%20) or remove it")
    parts = urlsplit(value)
    if not re.match(r"^[a-z][a-z0-9+.\-]*$", parts.scheme or ""):
        raise ValueError("expected an SQLAlchemy URI such as postgresql://superset@db.example/superset")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ValueError("the URI's port is not a number from 0 to 65535") from None
    if parts.password is not None:
        raise ValueError("the URI carries a password; remove it from the URI and set password_file instead")


_CRONTAB_FIELD = re.compile(r"^[A-Za-z0-9*/,-]{1,100}$")


class Crontab(Model):
    """A celery.schedules.crontab, field by field (built with Celery's own parser while validating)."""

    minute: str = Field("*", pattern=_CRONTAB_FIELD.pattern, description="crontab minute field.")
    hour: str = Field("*", pattern=_CRONTAB_FIELD.pattern, description="crontab hour field.")
    day_of_week: str = Field("*", pattern=_CRONTAB_FIELD.pattern, description="crontab day-of-week field.")
    day_of_month: str = Field("*", pattern=_CRONTAB_FIELD.pattern, description="crontab day-of-month field.")
    month_of_year: str = Field("*", pattern=_CRONTAB_FIELD.pattern, description="crontab month field.")

    @model_validator(mode="after")
    def _celery_accepts_it(self) -> Crontab:
        # The rendered config builds celery.schedules.crontab(...) at import: build it now, so that an
        # hour of 25 is an error of `check`, not of Superset's start.
        for name in type(self).model_fields:
            if (problem := _crontab_field_problem(name, getattr(self, name))) is not None:
                raise LocatedValueError(name, f"Celery refuses {getattr(self, name)!r}: {problem}")
        return self


@functools.lru_cache(maxsize=256)
def _crontab_field_problem(name: str, value: str) -> str | None:
    from celery.schedules import crontab  # noqa: PLC0415 - only validation needs Celery

    try:
        crontab(**{name: value})
    except (ValueError, TypeError, IndexError) as err:
        return str(err)
    return None


class BeatEntry(Model):
    """One entry of Celery's beat_schedule."""

    task: DottedName = Field(description="Registered Celery task name.")
    crontab: Crontab = Field(description="When to send it.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the task.")
    expires_seconds: int | None = Field(None, gt=0, description="options.expires of the sent task.")


def _default_beat_schedule() -> dict[str, BeatEntry]:
    # Superset's own defaults: reports every minute, log pruning daily.
    return {
        "reports.scheduler": BeatEntry(task="reports.scheduler", crontab=Crontab(), expires_seconds=3600),
        "reports.prune_log": BeatEntry(task="reports.prune_log", crontab=Crontab(minute="0", hour="0")),
    }


DEFAULT_CELERY_IMPORTS = (
    "superset.sql_lab",
    "superset.tasks.scheduler",
    "superset.tasks.thumbnails",
    "superset.tasks.cache",
    "superset.tasks.slack",
)


class Celery(Model):
    """Celery's configuration (CELERY_CONFIG); upstream key names."""

    imports: tuple[DottedName, ...] = Field(DEFAULT_CELERY_IMPORTS, description="Modules whose tasks workers register.")
    worker_prefetch_multiplier: int = Field(
        1,
        le=1000,
        description="Messages a worker process reserves (1-1000; Celery would read 0 as unlimited).",
        json_schema_extra={"minimum": 1},
    )
    task_acks_late: bool = Field(
        False,
        description=(
            "Acknowledge after the task ran, and re-queue a task whose worker process was lost (rendered with "
            "task_reject_on_worker_lost): a lost query then runs again, so it may run twice. Off: a lost query "
            "ends failed with a message (docs/reliability.md)."
        ),
    )
    beat_schedule: dict[str, BeatEntry] = Field(
        default_factory=_default_beat_schedule, description="Periodic tasks (reports every minute, log pruning daily)."
    )

    @field_validator("worker_prefetch_multiplier")
    @classmethod
    def _prefetch_bounded(cls, value: int) -> int:
        if value < 1:
            raise ValueError(
                f"{value} is below 1: Celery reads 0 as unlimited, so a worker would reserve every queued message "
                "and queries would wait behind a busy worker while others sit idle; use 1 (the default) or more"
            )
        return value

    @field_validator("imports")
    @classmethod
    def _sql_lab_imported(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "superset.sql_lab" not in value:
            raise ValueError("must include 'superset.sql_lab', or workers never register sql_lab.get_sql_results")
        return value


_LANE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class Lane(Model):
    """A SQL Lab lane: these databases' async queries get a Celery queue and worker of their own."""

    databases: tuple[Text, ...] = Field(
        description="Superset database_name(s) whose SQL Lab queries run in this lane; each in at most one lane."
    )
    concurrency: int = Field(2, ge=1, le=64, description="The lane worker's prefork children (-c), 1-64.")

    @field_validator("databases")
    @classmethod
    def _some_databases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError('is empty; list the database_name(s) of this lane, e.g. ["ClickHouse (interactive)"]')
        return value


class SQLLab(Model):
    """SQL Lab limits and persistence."""

    timeout_seconds: Seconds = Field(300, description="SQLLAB_TIMEOUT: synchronous queries (web request).")
    async_time_limit_seconds: Seconds = Field(
        300,
        description="SQLLAB_ASYNC_TIME_LIMIT_SEC, enforced as the Celery soft time limit of sql_lab.get_sql_results.",
    )
    hard_time_limit_grace_seconds: Seconds = Field(
        60, description="Seconds after the soft limit at which Celery kills the worker child outright."
    )
    running_grace_seconds: int = Field(
        60,
        ge=5,
        le=3600,
        description=(
            "Seconds (5-3600) after the hard time limit (async_time_limit_seconds + hard_time_limit_grace_seconds) "
            "at which the web fails a query still running with no worker reporting its end (worker host lost); "
            "at most 5 s later. Covers clock skew between hosts."
        ),
    )
    backend_persistence: bool = Field(True, description="Feature flag SQLLAB_BACKEND_PERSISTENCE.")
    results_timeout_seconds: Seconds = Field(86400, description="How long async results stay in Redis.")
    pending_timeout_seconds: int = Field(
        30,
        ge=5,
        le=3600,
        description=(
            "Seconds (5-3600) an async SQL Lab query may stay pending while no Celery worker answers a "
            "ping; then the web fails it ('No Celery worker picked up this query ...') at most 6 s later. "
            "A busy worker leaves it pending."
        ),
    )

    lanes: dict[str, Lane] = Field(
        default_factory=dict,
        description=(
            "Per-database lanes: lane name (a-z, digits, _; it names the queue sql_lab_lane_NAME, a runner role and "
            "a unit) -> its databases and worker concurrency. Their queries never wait behind the shared queue "
            "(docs/settings.md). Empty: one queue for all."
        ),
    )

    @field_validator("lanes")
    @classmethod
    def _lane_names(cls, value: dict[str, Lane]) -> dict[str, Lane]:
        for name in value:
            if not _LANE_NAME.match(name):
                raise LocatedValueError(
                    name,
                    "is not a lane name: a lower-case letter, then up to 30 lower-case letters, digits or _ "
                    "(it names a Celery queue, a runner role and a systemd unit); rename it",
                )
        seen: dict[str, str] = {}
        for name, lane in sorted(value.items()):
            for db in lane.databases:
                if db in seen:
                    raise LocatedValueError(
                        f"{name}.databases",
                        f"{db!r} is in lanes '{seen[db]}' and '{name}': a database's queries go to one queue; "
                        "keep it in one lane",
                    )
                seen[db] = name
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SQLLab:
        if self.async_time_limit_seconds < self.timeout_seconds:
            raise LocatedValueError(
                "async_time_limit_seconds",
                f"async_time_limit_seconds ({self.async_time_limit_seconds}) is shorter than timeout_seconds "
                f"({self.timeout_seconds}): an async query would get less time than a synchronous one; "
                "raise async_time_limit_seconds or lower timeout_seconds",
            )
        return self


class GlobalAsyncQueries(Model):
    """GLOBAL_ASYNC_QUERIES: charts and dashboards load through Celery and Redis streams."""

    enabled: bool = Field(True, description="Feature flag GLOBAL_ASYNC_QUERIES.")
    jwt_secret_file: SecretFile | None = Field(
        None, description="GLOBAL_ASYNC_QUERIES_JWT_SECRET, at least 32 bytes. Required when enabled."
    )
    transport: Literal["polling"] = Field("polling", description="Only polling: ws needs a separate server.")
    polling_delay_ms: int = Field(500, ge=50, le=60000, description="GLOBAL_ASYNC_QUERIES_POLLING_DELAY.")
    jwt_cookie_secure: bool = Field(False, description="Set when Superset is served over HTTPS.")

    @model_validator(mode="after")
    def _secret_when_enabled(self) -> GlobalAsyncQueries:
        if self.enabled and self.jwt_secret_file is None:
            raise LocatedValueError(
                "jwt_secret_file",
                "required while enabled is true; give a file with at least 32 random bytes "
                "(e.g. openssl rand -base64 48 > /run/keys/superset-gaq-jwt) or set enabled to false",
            )
        return self


class Admin(Model):
    """The admin user bootstrap creates (password from a file)."""

    username: Text = Field("admin", min_length=1, max_length=100, description="Admin user name.")
    first_name: Text = Field("Superset", max_length=100, description="Admin first name.")
    last_name: Text = Field("Admin", max_length=100, description="Admin last name.")
    email: str = Field("admin@localhost", pattern=r"^[^@\s]+@[^@\s]+$", description="Admin e-mail.")
    password_file: SecretFile | None = Field(None, description="Required for bootstrap to create the admin.")


_DB_NAME = re.compile(r"^[^\x00-\x1f\x7f\s][^\x00-\x1f\x7f]{0,249}$")


class Database(Model):
    """A database that bootstrap registers in Superset."""

    name: str = Field(description="database_name in Superset (1-250 printable characters).")
    uri: str = Field(
        description="SQLAlchemy URI without a password, e.g. clickhousedb://default@127.0.0.1:8123/default"
    )
    password_file: SecretFile | None = Field(None, description="File holding the database password.")
    allow_run_async: bool = Field(True, description="SQL Lab runs this database's queries on the Celery workers.")
    expose_in_sqllab: bool = Field(True, description="Offer the database in SQL Lab.")
    allow_dml: bool = Field(False, description="DML (INSERT/UPDATE/DELETE) from SQL Lab; off by default.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Superset's database 'extra' JSON.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _DB_NAME.match(value):
            raise ValueError("expected 1-250 printable characters, not starting with a space")
        return value

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        _check_uri(value)
        return value

    @field_validator("extra")
    @classmethod
    def _no_secret_in_extra(cls, value: dict[str, Any]) -> dict[str, Any]:
        # extra goes to Superset's API and, on NixOS, into the store: e.g. engine_params.connect_args.password
        if (where := _secret_looking_key(value)) is not None:
            raise LocatedValueError(
                where,
                "looks like a secret given inline; put the database password in password_file "
                "(other secrets: secret_files, read from a file at import)",
            )
        return value


# flask-limiter's notation, e.g. "10 per minute" or "5/second"; one limit.
_RATE_LIMIT = re.compile(r"^[1-9][0-9]{0,5} ?(per|/) ?([1-9][0-9]{0,5} )?(second|minute|hour|day)s?$")


class Web(Model):
    """gunicorn serving superset.app:create_app()."""

    bind: Host = Field("127.0.0.1", description="Listen address.")
    port: int = Field(8088, ge=1, le=65535)
    workers: int = Field(2, ge=1, le=256)
    threads: int = Field(4, ge=1, le=256)
    timeout_seconds: Seconds = Field(300, description="gunicorn --timeout; at least sql_lab.timeout_seconds.")
    public_url: str | None = Field(
        None,
        description=(
            "The https:// address people open, served by a TLS reverse proxy in front of the web. Turns on "
            "secure session and GAQ cookies, ProxyFix (one proxy's X-Forwarded-*) and with it HSTS, and is used "
            "for links in reports (WEBDRIVER_BASEURL_USER_FRIENDLY)."
        ),
    )
    login_rate_limit: str = Field(
        "20 per minute",
        description="AUTH_RATE_LIMIT: login form POSTs per client address (flask-limiter notation), shared by "
        "every gunicorn worker through Redis.",
    )
    limit_request_line: int = Field(
        4094,
        ge=0,
        le=8190,
        description="gunicorn --limit-request-line (bytes of the request line; gunicorn's default 4094; "
        "0 = unlimited, only on purpose).",
    )
    limit_request_field_size: int = Field(
        8190,
        ge=0,
        le=1048576,
        description="gunicorn --limit-request-field_size (bytes of one header; gunicorn's default 8190; "
        "0 = unlimited, only on purpose).",
    )
    extra_args: tuple[str, ...] = Field((), description="Extra gunicorn arguments.")

    @field_validator("public_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        problem = (
            _CONTROL.search(value)
            or re.search(r"\s", value)
            or parts.scheme != "https"
            or not parts.hostname
            or parts.username is not None
            or parts.query
            or parts.fragment
            or "#" in value
            or "?" in value
        )
        if problem:
            raise ValueError(
                "expected the https:// address of the TLS proxy in front of Superset, such as "
                "https://superset.example.org/ (no credentials, query or fragment); leave it unset when "
                "Superset is not served over HTTPS"
            )
        return value

    @field_validator("login_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        if not _RATE_LIMIT.match(value):
            raise ValueError("expected one limit such as '10 per minute' or '5/second'")
        return value


class Worker(Model):
    """Celery worker."""

    pool: Literal["prefork", "threads", "solo"] = Field("prefork", description="Only prefork enforces time limits.")
    concurrency: int = Field(4, ge=1, le=256, description="Worker processes (-c).")
    optimization: Literal["fair", "default"] = Field("fair", description="-O: fair hands tasks to idle children.")
    queues: tuple[Token, ...] = Field((), description="Queues to consume; empty: Celery's default queue 'celery'.")
    max_tasks_per_child: int | None = Field(None, ge=1, description="Recycle a child after this many tasks.")
    extra_args: tuple[str, ...] = Field((), description="Extra `celery worker` arguments.")

    @field_validator("pool")
    @classmethod
    def _pool_enforces_limits(cls, value: str) -> str:
        if value != "prefork":
            raise ValueError(
                f"the {value} pool does not enforce Celery time limits, so sql_lab.async_time_limit_seconds "
                "would be ignored; use prefork"
            )
        return value


class Beat(Model):
    """Celery beat (exactly one per stack)."""

    enabled: bool = Field(True, description="Run beat with this stack (exactly one per stack).")
    extra_args: tuple[str, ...] = Field((), description="Extra `celery beat` arguments.")


class Settings(Model):
    """Everything the async stack is configured by."""

    state_dir: StateDir = Field("/var/lib/superset-async", description="SUPERSET_HOME; SQLite and beat state.")
    secret_key_file: SecretFile = Field(description="SECRET_KEY (signs sessions; keep it stable).")
    metadata_db: MetadataDB = Field(default_factory=_defaults)
    redis: Redis = Field(default_factory=_defaults)
    celery: Celery = Field(default_factory=_defaults)
    sql_lab: SQLLab = Field(default_factory=_defaults)
    global_async_queries: GlobalAsyncQueries = Field(default_factory=_defaults)
    feature_flags: dict[str, bool] = Field(default_factory=dict, description="Merged over the flags we set.")
    admin: Admin = Field(default_factory=_defaults)
    databases: tuple[Database, ...] = ()
    web: Web = Field(default_factory=_defaults)
    worker: Worker = Field(default_factory=_defaults)
    beat: Beat = Field(default_factory=_defaults)
    reports: Reports = Field(default_factory=_defaults)
    flower: Flower = Field(default_factory=_defaults)
    metrics: Metrics = Field(default_factory=_defaults)
    secret_files: dict[str, SecretFile] = Field(
        default_factory=dict,
        description=(
            "Other Superset config keys that hold a secret (an OAuth client secret, MAPBOX_API_KEY, ...): key -> "
            "file. Each is read when Superset imports the config, from "
            "$CREDENTIALS_DIRECTORY/secret_file_<key in lower case> first."
        ),
    )
    extra_config: str = Field(
        "", description="Raw Python appended to superset_config.py (escape hatch; runs after our settings)."
    )

    @field_validator("secret_files")
    @classmethod
    def _secret_file_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not SECRET_FILE_KEY.match(key):
                raise LocatedValueError(
                    key, "expected a Superset config key: an upper-case letter, then upper-case letters, digits, _"
                )
            if key in MANAGED_CONFIG_KEYS:
                raise LocatedValueError(
                    key, f"{key} is rendered from the settings already; set {MANAGED_CONFIG_KEYS[key]} instead"
                )
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        if self.web.timeout_seconds < self.sql_lab.timeout_seconds:
            raise LocatedValueError(
                "web.timeout_seconds",
                f"{self.web.timeout_seconds} is shorter than sql_lab.timeout_seconds ({self.sql_lab.timeout_seconds}):"
                " gunicorn would kill synchronous SQL Lab queries first; raise it",
            )
        names = [d.name for d in self.databases]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise LocatedValueError("databases", f"names must be unique; {', '.join(dupes)} appear more than once")
        slugs = [credential_slug(n) for n in names]
        clashes = sorted({n for n, s in zip(names, slugs, strict=True) if slugs.count(s) > 1})
        if clashes:
            raise LocatedValueError(
                "databases", f"names {', '.join(clashes)} map to the same credential name; rename one of them"
            )
        for flag, owner in OWNED_FEATURE_FLAGS.items():
            if flag in self.feature_flags:
                raise LocatedValueError(
                    f"feature_flags.{flag}", f"set {owner} instead (other settings are derived from it)"
                )
        if (problem := sentinel_gaq_db_problem(self)) is not None:
            raise LocatedValueError(*problem)
        if (problem := lanes_problem(self)) is not None:
            raise LocatedValueError(*problem)
        beat_tasks = {entry.task for entry in self.celery.beat_schedule.values()}
        problem = reports_problem(
            self.reports, beat_enabled=self.beat.enabled, beat_tasks=beat_tasks, worker_args=self.worker.extra_args
        )
        if problem:
            raise LocatedValueError(*problem)
        socket = f"{local_postgresql_dir(self.state_dir)}/{LOCAL_POSTGRESQL_SOCKET}"
        if self.metadata_db.local_postgresql and len(socket.encode()) > MAX_SOCKET_PATH_BYTES:
            raise LocatedValueError(
                "state_dir",
                f"is too long for metadata_db.local_postgresql: its socket {socket} would be longer than"
                f" {MAX_SOCKET_PATH_BYTES} bytes, the limit of a unix socket path; use a shorter state_dir",
            )
        return self

    def sqlite_path(self) -> str | None:
        """The metadata SQLite file, when the metadata DB is SQLite."""
        uri = self.metadata_uri()
        return uri.removeprefix("sqlite:///").split("?", 1)[0] if uri.startswith("sqlite:///") else None

    def metadata_uri(self) -> str:
        """SQLALCHEMY_DATABASE_URI without its password."""
        if self.metadata_db.local_postgresql:
            return local_postgresql_uri(self.state_dir)
        return self.metadata_db.uri or f"sqlite:///{self.state_dir}/superset.db"


# metadata_db.local_postgresql: the runner's PostgreSQL keeps its data and its socket under state_dir;
# its socket file is named after the (default) port, which nothing else uses with listen_addresses ''.
LOCAL_POSTGRESQL_DIR = "postgresql"
LOCAL_POSTGRESQL_ROLE = "superset"  # the role and the database
LOCAL_POSTGRESQL_SOCKET = ".s.PGSQL.5432"


def local_postgresql_dir(state_dir: str) -> str:
    """The runner's PostgreSQL directory: its data dir and its socket's directory (peer auth, no password)."""
    return f"{state_dir.rstrip('/')}/{LOCAL_POSTGRESQL_DIR}"


def local_postgresql_uri(state_dir: str) -> str:
    """The metadata URI of the runner's PostgreSQL; libpq reads `host=<directory>` as the socket's directory."""
    host = quote(local_postgresql_dir(state_dir), safe="/")
    return f"postgresql+psycopg2://{LOCAL_POSTGRESQL_ROLE}@/{LOCAL_POSTGRESQL_ROLE}?host={host}"


ADMIN_CREDENTIAL = "admin_password"


def database_credential(db: Database) -> str:
    """The credential name of a database's password file (LoadCredential= and $CREDENTIALS_DIRECTORY)."""
    return f"database_{credential_slug(db.name)}_password"


def secret_files(settings: Settings) -> dict[str, tuple[str, str]]:
    """Every configured secret: credential name -> (setting path, file path).

    The credential name is the file name systemd's LoadCredential= gives it under
    $CREDENTIALS_DIRECTORY; keep in sync with nix/modules/superset-async/credentials.nix.
    """
    found: dict[str, tuple[str, str]] = {"secret_key": ("secret_key_file", settings.secret_key_file)}
    optional = {
        "metadata_db_password": ("metadata_db.password_file", settings.metadata_db.password_file),
        "redis_password": ("redis.password_file", settings.redis.password_file),
        "redis_tls_key": ("redis.tls.key_file", settings.redis.tls.key_file),
        "redis_sentinel_password": (
            "redis.sentinel.password_file",
            settings.redis.sentinel.password_file if settings.redis.sentinel else None,
        ),
        "gaq_jwt_secret": (
            "global_async_queries.jwt_secret_file",
            settings.global_async_queries.jwt_secret_file if settings.global_async_queries.enabled else None,
        ),
        ADMIN_CREDENTIAL: ("admin.password_file", settings.admin.password_file),
        "smtp_password": ("reports.smtp.password_file", settings.reports.smtp.password_file),
        "slack_token": ("reports.slack.token_file", settings.reports.slack.token_file),
        FLOWER_PASSWORD_CREDENTIAL: (
            "flower.password_file",
            settings.flower.password_file if settings.flower.enabled else None,
        ),
    }
    for index, db in enumerate(settings.databases):
        optional[database_credential(db)] = (
            f"databases[{index}].password_file",
            db.password_file,
        )
    for key, path in settings.secret_files.items():
        optional[secret_file_credential(key)] = (f"secret_files.{key}", path)
    found.update({name: (where, path) for name, (where, path) in optional.items() if path is not None})
    return found


def secret_file_credential(key: str) -> str:
    """The credential name of a `secret_files` entry; keep in sync with the module's LoadCredential= wiring."""
    return f"secret_file_{key.lower()}"


def redis_access_problem(settings: Settings) -> tuple[str, str] | None:
    """(location, message) when the settings reach Redis without a password over TCP, else None.

    Superset's results backend and caches store pickles: whoever can write to Redis runs code as
    Superset. Without a password, Redis must be reachable only through a unix socket of the service's
    own, which GLOBAL_ASYNC_QUERIES cannot use (its backend always speaks TCP).
    """
    r = settings.redis
    if r.password_file is not None:
        return None
    if r.unix_socket is not None and not settings.global_async_queries.enabled:
        return None
    return (
        "redis.password_file",
        "required: Redis holds pickles Superset loads, so anyone who can write to it runs code as Superset; "
        "write a random password to a file readable only by the service (e.g. openssl rand -base64 32 > "
        "/run/keys/superset-redis) and set redis.password_file to it (or reach Redis only through "
        "redis.unix_socket with global_async_queries.enabled false)",
    )


# A lane's worker runs the worker's command with worker.extra_args: these would override its own queue, node
# name or concurrency, or embed one more beat in each lane worker.
_LANE_WORKER_ARGS = ("-Q", "--queues", "-n", "--hostname", "-c", "--concurrency", "-B", "--beat")


def lanes_problem(settings: Settings) -> tuple[str, str] | None:
    """(location, message) when sql_lab.lanes contradicts databases[], worker.queues or worker.extra_args."""
    if settings.sql_lab.lanes:
        for arg in settings.worker.extra_args:
            flag = arg.split("=", 1)[0] if arg.startswith("--") else arg[:2]
            if flag in _LANE_WORKER_ARGS:
                return (
                    "worker.extra_args",
                    f"contains {flag}, but each SQL Lab lane's worker runs with worker.extra_args too, where it "
                    "would override the lane's own queue, node name or concurrency (or start one more beat); set "
                    "it through worker.queues / worker.concurrency / sql_lab.lanes instead, or remove it",
                )
    sync = {d.name for d in settings.databases if not d.allow_run_async}
    for name, lane in sorted(settings.sql_lab.lanes.items()):
        for db in lane.databases:
            if db in sync:
                return (
                    f"sql_lab.lanes.{name}.databases",
                    f"{db!r} has allow_run_async false in databases[]: its queries run in the web, never on a "
                    "worker, so a lane cannot serve them; set allow_run_async true or remove it from the lane",
                )
        if lane_queue(name) in settings.worker.queues:
            return (
                "worker.queues",
                f"contains {lane_queue(name)!r}, the queue of lane '{name}', which its own worker consumes; remove "
                "it from worker.queues (the main worker would run that lane's queries)",
            )
    return None


def sentinel_gaq_db_problem(settings: Settings) -> tuple[str, str] | None:
    """With Sentinel, Superset 6.1's GAQ backend (RedisSentinelCacheBackend) ignores CACHE_REDIS_DB and writes
    its streams to DB 0: the settings must say so, or DB 0 would silently hold two roles."""
    dbs = settings.redis.dbs
    if settings.redis.sentinel is None or not settings.global_async_queries.enabled or dbs.async_events == 0:
        return None
    return (
        "redis.dbs.async_events",
        f"is {dbs.async_events}, but with redis.sentinel Superset's GAQ backend writes its streams to DB 0 whatever "
        "the setting (superset/async_events/cache_backend.py passes no db to the master): set "
        'redis.dbs.async_events to 0 and move the role now on DB 0 elsewhere, e.g. "dbs": {"broker": 5, '
        '"async_events": 0}',
    )
