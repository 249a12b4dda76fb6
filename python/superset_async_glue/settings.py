"""The typed settings of the async stack: one schema for the renderer, bootstrap, runner, verify and the NixOS module.

Upstream's names are kept where a setting maps onto a Superset or Celery key, so that upstream's
documentation applies (https://superset.apache.org/docs/configuration/async-queries-celery).
Secrets are only ever paths to files; the values are read at run time, never here.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from .settings_reports import Reports, reports_problem

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
}

REDIS_ROLES = ("broker", "results", "cache", "data_cache", "async_events")


class LocatedValueError(ValueError):
    """A validation failure of a field other than the one being validated (cross-field checks)."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(message)
        self.location = location


def _absolute_path(value: str) -> str:
    if not value.startswith("/") or "\n" in value or "\x00" in value:
        raise ValueError(
            "expected an absolute path to a file that holds the secret (e.g. /run/keys/superset-secret); "
            "never put the secret itself in the settings"
        )
    return str(PurePosixPath(value))


def _plain_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"expected an absolute path, found {value!r}")
    return str(PurePosixPath(value))


# "secret_file" marks the key in the JSON schema, from which the NixOS module's contract is generated
# (superset_async_glue/contract.py): the module checks that no such path lies in the Nix store.
SecretFile = Annotated[str, AfterValidator(_absolute_path), Field(json_schema_extra={"secret_file": True})]
AbsolutePath = Annotated[str, AfterValidator(_plain_path)]
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


class Redis(Model):
    """How every process reaches Redis."""

    host: str = Field("127.0.0.1", min_length=1, description="TCP host (always used by GAQ, see docs).")
    port: int = Field(6379, ge=1, le=65535, description="TCP port.")
    unix_socket: AbsolutePath | None = Field(
        None, description="Unix socket; when set, broker, results and caches use it instead of TCP."
    )
    username: str | None = Field(None, description="Redis ACL user (Redis 6+).")
    password_file: SecretFile | None = Field(None, description="File holding the Redis password (requirepass).")
    tls: RedisTLS = Field(default_factory=_defaults)
    dbs: RedisDBs = Field(default_factory=_defaults)

    @field_validator("host")
    @classmethod
    def _host_without_credentials(cls, value: str) -> str:
        if "@" in value or "://" in value:
            raise ValueError(
                "expected a bare host name or address; a URL or credentials do not belong here "
                "(set username and password_file instead)"
            )
        return value


class MetadataDB(Model):
    """Superset's metadata database (SQLALCHEMY_DATABASE_URI)."""

    uri: str | None = Field(
        None,
        description="SQLAlchemy URI without a password; default: SQLite file superset.db in state_dir.",
    )
    password_file: SecretFile | None = Field(None, description="File holding the metadata DB password.")

    @field_validator("uri")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value is not None:
            _check_uri(value)
        return value

    @model_validator(mode="after")
    def _password_needs_server(self) -> MetadataDB:
        if self.password_file and (self.uri is None or self.uri.startswith("sqlite")):
            raise LocatedValueError("password_file", "is set but the metadata DB is SQLite, which takes no password")
        return self


# Runs of these become "_" in a credential name; the NixOS module applies the same pattern (contract.py).
CREDENTIAL_SLUG_SEPARATORS = r"[^A-Za-z0-9]+"


def credential_slug(name: str) -> str:
    """A database name as it appears in a systemd credential name (letters, digits, underscore)."""
    return re.sub(CREDENTIAL_SLUG_SEPARATORS, "_", name).strip("_").lower()


def _check_uri(value: str) -> None:
    parts = urlsplit(value)
    if not re.match(r"^[a-z][a-z0-9+.\-]*$", parts.scheme or ""):
        raise ValueError("expected an SQLAlchemy URI such as postgresql://superset@db.example/superset")
    if parts.password is not None:
        raise ValueError("the URI carries a password; remove it from the URI and set password_file instead")


class Crontab(Model):
    """A celery.schedules.crontab, field by field."""

    minute: str = Field("*", description="crontab minute field.")
    hour: str = Field("*", description="crontab hour field.")
    day_of_week: str = Field("*", description="crontab day-of-week field.")
    day_of_month: str = Field("*", description="crontab day-of-month field.")
    month_of_year: str = Field("*", description="crontab month field.")


class BeatEntry(Model):
    """One entry of Celery's beat_schedule."""

    task: str = Field(min_length=1, description="Registered Celery task name.")
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

    imports: tuple[str, ...] = Field(DEFAULT_CELERY_IMPORTS, description="Modules whose tasks workers register.")
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

    username: str = Field("admin", min_length=1, description="Admin user name.")
    first_name: str = Field("Superset", description="Admin first name.")
    last_name: str = Field("Admin", description="Admin last name.")
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
            raise ValueError(f"expected 1-250 printable characters, not starting with a space; found {value!r}")
        return value

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        _check_uri(value)
        return value


class Web(Model):
    """gunicorn serving superset.app:create_app()."""

    bind: str = Field("127.0.0.1", min_length=1, description="Listen address.")
    port: int = Field(8088, ge=1, le=65535)
    workers: int = Field(2, ge=1, le=256)
    threads: int = Field(4, ge=1, le=256)
    timeout_seconds: Seconds = Field(300, description="gunicorn --timeout; at least sql_lab.timeout_seconds.")
    extra_args: tuple[str, ...] = Field((), description="Extra gunicorn arguments.")


class Worker(Model):
    """Celery worker."""

    pool: Literal["prefork", "threads", "solo"] = Field("prefork", description="Only prefork enforces time limits.")
    concurrency: int = Field(4, ge=1, le=256, description="Worker processes (-c).")
    optimization: Literal["fair", "default"] = Field("fair", description="-O: fair hands tasks to idle children.")
    queues: tuple[str, ...] = Field((), description="Queues to consume; empty: Celery's default queue 'celery'.")
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

    state_dir: AbsolutePath = Field("/var/lib/superset-async", description="SUPERSET_HOME; SQLite and beat state.")
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
    extra_config: str = Field(
        "", description="Raw Python appended to superset_config.py (escape hatch; runs after our settings)."
    )

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
        beat_tasks = {entry.task for entry in self.celery.beat_schedule.values()}
        problem = reports_problem(
            self.reports, beat_enabled=self.beat.enabled, beat_tasks=beat_tasks, worker_args=self.worker.extra_args
        )
        if problem:
            raise LocatedValueError(*problem)
        return self

    def sqlite_path(self) -> str | None:
        """The metadata SQLite file, when the metadata DB is SQLite."""
        uri = self.metadata_uri()
        return uri.removeprefix("sqlite:///").split("?", 1)[0] if uri.startswith("sqlite:///") else None

    def metadata_uri(self) -> str:
        """SQLALCHEMY_DATABASE_URI without its password."""
        return self.metadata_db.uri or f"sqlite:///{self.state_dir}/superset.db"


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
        "gaq_jwt_secret": (
            "global_async_queries.jwt_secret_file",
            settings.global_async_queries.jwt_secret_file if settings.global_async_queries.enabled else None,
        ),
        ADMIN_CREDENTIAL: ("admin.password_file", settings.admin.password_file),
        "smtp_password": ("reports.smtp.password_file", settings.reports.smtp.password_file),
        "slack_token": ("reports.slack.token_file", settings.reports.slack.token_file),
    }
    for index, db in enumerate(settings.databases):
        optional[database_credential(db)] = (
            f"databases[{index}].password_file",
            db.password_file,
        )
    found.update({name: (where, path) for name, (where, path) in optional.items() if path is not None})
    return found
