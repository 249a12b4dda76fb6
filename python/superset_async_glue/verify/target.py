"""What verify looks at, resolved once: the options, the settings, the secret values (for redaction),
and the rendered superset_config.py imported in this process, the one source of every Redis and Celery
endpoint verify contacts and of the config facts check 6 judges.

The module is imported as Superset imports it (a module from a file), never Superset itself: what
Superset would add are its defaults, and the few verify reads are in `UPSTREAM` (superset/config.py of
Superset 6.1). When the module does not import, no endpoint exists; the checks that need one skip and
check 6 says why.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Literal
from urllib.parse import quote

from ..errors import UsageError
from ..render import feature_flags
from ..secret_files import secret_file_problems
from ..settings import Settings, secret_files
from .facts import SQLLAB_TASK, ConfigFacts

Platform = Literal["auto", "local", "systemd"]
DEFAULT_SQL = "SELECT 1 AS superset_async_verify"
# Superset 6.1's defaults (superset/config.py) for the keys verify reads; keep in step on an upgrade.
UPSTREAM: Mapping[str, Any] = {
    "RESULTS_BACKEND": None,
    "CACHE_CONFIG": {"CACHE_TYPE": "NullCache"},
    "DATA_CACHE_CONFIG": {"CACHE_TYPE": "NullCache"},
    "GLOBAL_ASYNC_QUERIES_JWT_SECRET": "test-secret-change-me",
    "GLOBAL_ASYNC_QUERIES_CACHE_BACKEND": {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_HOST": "localhost"},
    "FEATURE_FLAGS": {"GLOBAL_ASYNC_QUERIES": False},  # DEFAULT_FEATURE_FLAGS' value of the flag verify needs
}


@dataclass(frozen=True)
class VerifyOptions:
    """What `verify` was asked to do."""

    settings_path: Path
    config_path: Path
    platform: Platform = "auto"
    state_dir: Path | None = None
    web_python: Path | None = None
    run_query: bool = True
    query_timeout: float = 60.0
    sql: str = DEFAULT_SQL


@dataclass(frozen=True)
class RedisEndpoint:
    """One Redis client the config builds: which role it serves and how Superset constructs it.

    `url` and `kwargs` may hold the Redis password: never print them (see redact.py).
    """

    role: str  # a key of settings.redis.dbs
    client: str  # the config key that builds it
    kind: Literal["kombu", "celery_backend", "redis_url", "redis_kwargs", "sentinel"]
    url: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedConfig:
    """The rendered module imported in this process, or why it did not import."""

    error: str | None
    module: ModuleType | None
    endpoints: tuple[RedisEndpoint, ...] = ()

    def get(self, key: str) -> Any:
        """A config value as Superset sees it: the module's, else Superset's default."""
        return getattr(self.module, key, UPSTREAM.get(key))

    @property
    def celery(self) -> Any:
        return self.get("CELERY_CONFIG")

    def celery_get(self, key: str) -> Any:
        return getattr(self.celery, key, None)

    @property
    def broker_url(self) -> str:
        return str(self.celery_get("broker_url") or "")

    @property
    def result_backend(self) -> str | None:
        found = self.celery_get("result_backend")
        return str(found) if found else None

    @property
    def broker_options(self) -> dict[str, Any]:
        """broker_use_ssl, broker_transport_options, redis_backend_use_ssl as the config sets them."""
        return {
            "broker_use_ssl": self.celery_get("broker_use_ssl"),
            "broker_transport_options": dict(self.celery_get("broker_transport_options") or {}),
            "redis_backend_use_ssl": self.celery_get("redis_backend_use_ssl"),
        }

    @property
    def sentinel(self) -> tuple[list[tuple[str, int]], str, dict[str, Any]] | None:
        """(Sentinels, master name, sentinel_kwargs) of a config rendered with redis.sentinel, else None."""
        found = getattr(self.module, "_REDIS_SENTINELS", None)
        if not found:
            return None
        kwargs = dict(getattr(self.module, "_REDIS_SENTINEL_KWARGS", None) or {})
        return [(str(h), int(p)) for h, p in found], str(getattr(self.module, "_REDIS_SENTINEL_MASTER", "")), kwargs

    def cache_type(self, key: str) -> str:
        return str(dict(self.get(key) or {}).get("CACHE_TYPE", "NullCache")).rsplit(".", 1)[-1]

    @property
    def gaq_enabled(self) -> bool:
        return bool(dict(self.get("FEATURE_FLAGS") or {}).get("GLOBAL_ASYNC_QUERIES"))

    def cache_types(self) -> dict[str, str]:
        keys = ["CACHE_CONFIG", "DATA_CACHE_CONFIG"]
        keys += ["GLOBAL_ASYNC_QUERIES_CACHE_BACKEND"] if self.gaq_enabled else []
        return {key: self.cache_type(key) for key in keys}

    def beat_tasks(self) -> dict[str, str] | None:
        if self.module is None:
            return None
        schedule = dict(self.celery_get("beat_schedule") or {})
        return {str(name): str(entry.get("task")) for name, entry in schedule.items()}


@dataclass(frozen=True)
class Target:
    """Settings, the imported config and the secret values to keep out of every output."""

    options: VerifyOptions
    settings: Settings
    config: LoadedConfig
    secrets: tuple[str, ...]

    @property
    def state_dir(self) -> Path:
        return state_dir_of(self.options, self.settings)


def state_dir_of(options: VerifyOptions, settings: Settings) -> Path:
    """The local runner's state dir: --state-dir, else the settings' state_dir."""
    return options.state_dir or Path(settings.state_dir)


def load_target(options: VerifyOptions, settings: Settings) -> Target:
    config_path = options.config_path
    try:
        config_path.read_bytes()
    except OSError as err:
        raise UsageError(f"--config {config_path}: cannot read it ({err.strerror})") from err
    secrets = []
    for name, (_where, path) in secret_files(settings).items():
        try:
            secrets.append(Path(path).read_text(encoding="utf-8").rstrip("\r\n"))
        except OSError:
            continue  # reported by check 6; a file we cannot read is a secret we cannot print either
        if name == "redis_password":
            secrets.append(quote(secrets[-1], safe=""))
    loaded = load_config(config_path)
    password = getattr(loaded.module, "_REDIS_PASSWORD", None)
    if isinstance(password, str):
        secrets.append(password)
    return Target(options, settings, loaded, tuple(s for s in secrets if s))


def import_config(config_path: Path) -> ModuleType:
    """Import superset_config.py the way Superset does (a module from a file), under a private name."""
    name = f"_superset_async_verify_config_{abs(hash(str(config_path)))}"
    spec = importlib.util.spec_from_file_location(name, config_path)
    if spec is None or spec.loader is None:
        raise UsageError(f"--config {config_path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop(name, None)
    spec.loader.exec_module(module)
    return module


def load_config(config_path: Path) -> LoadedConfig:
    try:
        module = import_config(config_path)
    except Exception as err:  # the finding of check 6; the checks that need endpoints skip
        return LoadedConfig(f"{type(err).__name__}: {err}", None)
    loaded = LoadedConfig(None, module)
    return LoadedConfig(None, module, endpoints(loaded))


SENTINEL_CACHES = ("RedisSentinelCache", "MasterSentinelCache")  # upstream's, and ours (sentinel_cache.py)


def _sentinel_endpoint(role: str, key: str, config: dict[str, Any]) -> RedisEndpoint:
    # Flask-Caching's RedisSentinelCache.factory and Superset's RedisSentinelCacheBackend.from_config read the
    # same keys; the GAQ backend passes no db (its streams land in DB 0), so none is taken for it here.
    kwargs = {
        "sentinels": [tuple(s) for s in config.get("CACHE_REDIS_SENTINELS", [("127.0.0.1", 26379)])],
        "master": config.get("CACHE_REDIS_SENTINEL_MASTER", "mymaster"),
        "sentinel_kwargs": {"password": config.get("CACHE_REDIS_SENTINEL_PASSWORD")},
        "password": config.get("CACHE_REDIS_PASSWORD"),
        "db": 0 if role == "async_events" else config.get("CACHE_REDIS_DB", 0),
    }
    return RedisEndpoint(role, key, "sentinel", None, kwargs)


def _cache_endpoint(role: str, key: str, config: dict[str, Any]) -> RedisEndpoint:
    if config.get("CACHE_REDIS_URL"):
        # flask-caching: redis.from_url(CACHE_REDIS_URL, db=CACHE_REDIS_DB or 0); the URL's db wins.
        return RedisEndpoint(role, key, "redis_url", config["CACHE_REDIS_URL"], {"db": config.get("CACHE_REDIS_DB", 0)})
    return RedisEndpoint(role, key, "redis_kwargs", None, _redis_kwargs(config))


def _redis_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "host": config.get("CACHE_REDIS_HOST", "localhost"),
        "port": config.get("CACHE_REDIS_PORT", 6379),
        "db": config.get("CACHE_REDIS_DB", 0),
        "password": config.get("CACHE_REDIS_PASSWORD"),
    }


def _gaq_endpoint(config: dict[str, Any]) -> RedisEndpoint:
    # Superset's RedisCacheBackend.from_config (superset/async_events/cache_backend.py), keep in step.
    kwargs = _redis_kwargs(config)
    if config.get("CACHE_REDIS_SSL"):
        kwargs |= {
            "ssl": True,
            "ssl_certfile": config.get("CACHE_REDIS_SSL_CERTFILE"),
            "ssl_keyfile": config.get("CACHE_REDIS_SSL_KEYFILE"),
            "ssl_cert_reqs": config.get("CACHE_REDIS_SSL_CERT_REQS", "required"),
            "ssl_ca_certs": config.get("CACHE_REDIS_SSL_CA_CERTS"),
        }
    if config.get("CACHE_REDIS_USER"):
        kwargs["username"] = config["CACHE_REDIS_USER"]
    return RedisEndpoint("async_events", "GLOBAL_ASYNC_QUERIES_CACHE_BACKEND", "redis_kwargs", None, kwargs)


def _results_endpoint(results_backend: Any) -> RedisEndpoint | None:
    client = getattr(results_backend, "_write_client", None)  # cachelib.redis.RedisCache
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return None
    if hasattr(pool, "sentinel_manager"):  # a master_for client: ask the same Sentinels for the same master
        manager = pool.sentinel_manager
        kwargs = {
            "sentinels": [c.connection_pool.connection_kwargs for c in manager.sentinels],
            "master": pool.service_name,
            "sentinel_kwargs": dict(manager.sentinel_kwargs),
            "password": pool.connection_kwargs.get("password"),
            "db": pool.connection_kwargs.get("db", 0),
        }
        kwargs["sentinels"] = [(str(c.get("host")), int(c.get("port", 26379))) for c in kwargs["sentinels"]]
        return RedisEndpoint("results", "RESULTS_BACKEND", "sentinel", None, kwargs)
    kwargs = dict(pool.connection_kwargs)
    kwargs["connection_class"] = pool.connection_class
    return RedisEndpoint("results", "RESULTS_BACKEND", "redis_kwargs", None, kwargs)


def endpoints(config: LoadedConfig) -> tuple[RedisEndpoint, ...]:
    """Every Redis client the config builds, as its library builds it."""
    found = [RedisEndpoint("broker", "CELERY_CONFIG.broker_url", "kombu", config.broker_url)]
    backend = config.result_backend
    if backend and backend.startswith(("redis", "rediss", "sentinel")):
        found.append(RedisEndpoint("results", "CELERY_CONFIG.result_backend", "celery_backend", backend))
    if (results := _results_endpoint(config.get("RESULTS_BACKEND"))) is not None:
        found.append(results)
    for role, key in (("cache", "CACHE_CONFIG"), ("data_cache", "DATA_CACHE_CONFIG")):
        if config.cache_type(key) in ("RedisCache", "redis"):
            found.append(_cache_endpoint(role, key, dict(config.get(key) or {})))
        elif config.cache_type(key) in SENTINEL_CACHES:
            found.append(_sentinel_endpoint(role, key, dict(config.get(key) or {})))
    gaq = "GLOBAL_ASYNC_QUERIES_CACHE_BACKEND"
    if config.gaq_enabled and config.cache_type(gaq) in ("RedisCache", "redis"):
        found.append(_gaq_endpoint(dict(config.get(gaq) or {})))
    elif config.gaq_enabled and config.cache_type(gaq) == "RedisSentinelCache":
        found.append(_sentinel_endpoint("async_events", gaq, dict(config.get(gaq) or {})))
    return tuple(found)


def without_password(uri: str) -> str:
    """A URI without its password, for showing and for comparing settings (which have none) and config."""
    return re.sub(r"(//[^:/@]*):[^@/]*@", r"\1@", uri)


def sqllab_annotation(celery_config: Any) -> dict[str, Any]:
    """What Celery's task annotations set on sql_lab.get_sql_results (Celery's own resolution)."""
    from celery.app.annotations import prepare, resolve_all  # noqa: PLC0415 - imported when check 6 runs

    class Task:
        name = SQLLAB_TASK

    merged: dict[str, Any] = {}
    for found in resolve_all(prepare(getattr(celery_config, "task_annotations", None)), Task):
        merged.update({k: v for k, v in dict(found).items() if isinstance(v, int | float | str | bool)})
    return merged


def config_facts(
    target: Target,
    web_import: tuple[str | None, float | None],
    worker_pools: tuple[tuple[str, str], ...],
) -> ConfigFacts:
    """Check 6's facts: the import here and in the web's interpreter, secret files, and the values it needs."""
    settings, config = target.settings, target.config
    web_error, seconds = web_import
    secret_problems = tuple((str(p), p.location) for p in secret_file_problems(settings, missing_ok=False))
    base = ConfigFacts(
        config.error,
        web_error,
        secret_problems,
        seconds,
        wanted_flags=feature_flags(settings),
        wanted_time_limit=settings.sql_lab.async_time_limit_seconds,
        wanted_metadata_uri=without_password(settings.metadata_uri()),
        worker_pools=worker_pools,
    )
    if config.module is None:
        return base
    secret = config.get("GLOBAL_ASYNC_QUERIES_JWT_SECRET")
    flags = {**UPSTREAM["FEATURE_FLAGS"], **dict(config.get("FEATURE_FLAGS") or {})}
    results = config.get("RESULTS_BACKEND")
    return replace(
        base,
        results_backend=None if results is None else type(results).__name__,
        celery_result_backend=config.result_backend is not None,
        feature_flags={k: v for k, v in flags.items() if isinstance(v, bool)},
        gaq_secret_bytes=len(str(secret).encode()) if secret is not None else 0,
        gaq_secret_is_default=secret == UPSTREAM["GLOBAL_ASYNC_QUERIES_JWT_SECRET"],
        gaq_cache_type=config.cache_type("GLOBAL_ASYNC_QUERIES_CACHE_BACKEND"),
        data_cache_type=config.cache_type("DATA_CACHE_CONFIG"),
        sqllab_annotation=sqllab_annotation(config.celery),
        metadata_uri=without_password(str(config.get("SQLALCHEMY_DATABASE_URI") or "")),
    )


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when two config paths are the same file, or files with the same bytes (a Nix store copy)."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        return Path(a).read_bytes() == Path(b).read_bytes()
    except OSError:
        return False
