"""What verify looks at, resolved once: settings, secret values (for redaction), and the Redis and
Celery endpoints of the rendered superset_config.py.

The endpoints come from importing the rendered module in this process, so they are the exact URLs
Superset builds. When it does not import (e.g. a secret file too short), they are rebuilt from the
settings with the renderer's own helpers, and check 6 reports why the config did not load
(tests/python/test_verify.py proves both ways agree on a healthy config).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal
from urllib.parse import quote

from ..errors import UsageError
from ..redis_urls import role_url
from ..secret_io import SecretFileError, read_secret
from ..settings import Settings, secret_files

Platform = Literal["auto", "local", "systemd"]
SQLLAB_TASK = "sql_lab.get_sql_results"
DEFAULT_SQL = "SELECT 1 AS superset_async_verify"


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
    kind: Literal["kombu", "celery_backend", "redis_url", "redis_kwargs"]
    url: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigView:
    """The parts of the rendered config verify needs, from the module itself or rebuilt from settings."""

    loaded: bool
    load_error: str | None
    broker_url: str
    broker_options: dict[str, Any]  # broker_use_ssl, broker_transport_options, redis_backend_use_ssl
    result_backend: str | None
    endpoints: tuple[RedisEndpoint, ...]
    results_backend: str | None  # RESULTS_BACKEND's class name, None when unset
    cache_types: dict[str, str]  # CACHE_CONFIG / DATA_CACHE_CONFIG / GAQ backend -> CACHE_TYPE
    beat_tasks: dict[str, str]  # beat_schedule entry -> task name
    celery_config: Any  # the CeleryConfig object (for routing), None when rebuilt
    redis_password: str | None


@dataclass(frozen=True)
class Target:
    """Settings, config and the secret values to keep out of every output."""

    options: VerifyOptions
    settings: Settings
    config: ConfigView
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
    view = config_view(config_path, settings)
    if view.redis_password:
        secrets.append(view.redis_password)
    return Target(options, settings, view, tuple(s for s in secrets if s))


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


def config_view(config_path: Path, settings: Settings) -> ConfigView:
    try:
        module = import_config(config_path)
    except Exception as err:  # reported by check 6; the endpoints are rebuilt from the settings
        return settings_view(settings, f"{type(err).__name__}: {err}")
    return module_view(module)


def _class_name(value: Any) -> str | None:
    if value is None:
        return None
    return type(value).__name__


def _cache_type(config: Any) -> str:
    kind = str((config or {}).get("CACHE_TYPE", "NullCache"))
    return kind.rsplit(".", 1)[-1]


def _cache_endpoint(role: str, key: str, config: dict[str, Any]) -> RedisEndpoint | None:
    if _cache_type(config) not in ("RedisCache", "redis"):
        return None
    if config.get("CACHE_REDIS_URL"):
        # flask-caching: redis.from_url(CACHE_REDIS_URL, db=CACHE_REDIS_DB or 0); the URL's db wins.
        return RedisEndpoint(role, key, "redis_url", config["CACHE_REDIS_URL"], {"db": config.get("CACHE_REDIS_DB", 0)})
    kwargs = {
        "host": config.get("CACHE_REDIS_HOST", "localhost"),
        "port": config.get("CACHE_REDIS_PORT", 6379),
        "db": config.get("CACHE_REDIS_DB", 0),
        "password": config.get("CACHE_REDIS_PASSWORD"),
    }
    return RedisEndpoint(role, key, "redis_kwargs", None, kwargs)


def _gaq_endpoint(config: dict[str, Any]) -> RedisEndpoint:
    # Superset's RedisCacheBackend.from_config (superset/async_events/cache_backend.py), keep in step.
    kwargs: dict[str, Any] = {
        "host": config.get("CACHE_REDIS_HOST", "localhost"),
        "port": config.get("CACHE_REDIS_PORT", 6379),
        "db": config.get("CACHE_REDIS_DB", 0),
        "password": config.get("CACHE_REDIS_PASSWORD"),
    }
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
    kwargs = dict(pool.connection_kwargs)
    kwargs["connection_class"] = pool.connection_class
    return RedisEndpoint("results", "RESULTS_BACKEND", "redis_kwargs", None, kwargs)


def module_view(module: ModuleType) -> ConfigView:
    celery = getattr(module, "CELERY_CONFIG", None)

    def get(key: str) -> Any:
        return getattr(celery, key, None)

    broker_url = str(get("broker_url") or get("BROKER_URL") or "")
    result_backend = get("result_backend") or get("CELERY_RESULT_BACKEND")
    endpoints = [RedisEndpoint("broker", "CELERY_CONFIG.broker_url", "kombu", broker_url)]
    if result_backend and str(result_backend).startswith(("redis", "rediss")):
        endpoints.append(
            RedisEndpoint("results", "CELERY_CONFIG.result_backend", "celery_backend", str(result_backend))
        )
    results_backend = getattr(module, "RESULTS_BACKEND", None)
    if (found := _results_endpoint(results_backend)) is not None:
        endpoints.append(found)
    cache_types = {}
    for role, key in (("cache", "CACHE_CONFIG"), ("data_cache", "DATA_CACHE_CONFIG")):
        config = dict(getattr(module, key, None) or {})
        cache_types[key] = _cache_type(config)
        if (endpoint := _cache_endpoint(role, key, config)) is not None:
            endpoints.append(endpoint)
    flags = dict(getattr(module, "FEATURE_FLAGS", None) or {})
    if flags.get("GLOBAL_ASYNC_QUERIES"):
        gaq = dict(getattr(module, "GLOBAL_ASYNC_QUERIES_CACHE_BACKEND", None) or {})
        cache_types["GLOBAL_ASYNC_QUERIES_CACHE_BACKEND"] = _cache_type(gaq)
        if cache_types["GLOBAL_ASYNC_QUERIES_CACHE_BACKEND"] in ("RedisCache", "redis"):
            endpoints.append(_gaq_endpoint(gaq))
    schedule = dict(get("beat_schedule") or {})
    return ConfigView(
        loaded=True,
        load_error=None,
        broker_url=broker_url,
        broker_options={
            "broker_use_ssl": get("broker_use_ssl"),
            "broker_transport_options": dict(get("broker_transport_options") or {}),
            "redis_backend_use_ssl": get("redis_backend_use_ssl"),
        },
        result_backend=str(result_backend) if result_backend else None,
        endpoints=tuple(endpoints),
        results_backend=_class_name(results_backend),
        cache_types=cache_types,
        beat_tasks={str(name): str(entry.get("task")) for name, entry in schedule.items()},
        celery_config=celery,
        redis_password=getattr(module, "_REDIS_PASSWORD", None),
    )


def settings_view(settings: Settings, error: str) -> ConfigView:
    """The endpoints the renderer would build for `settings` (render.py), with credentials from the files."""
    r, dbs = settings.redis, settings.redis.dbs
    password: str | None = None
    if r.password_file:
        try:
            password = read_secret("redis.password_file", r.password_file)
        except SecretFileError:
            password = None
    auth = f"{quote(r.username or '', safe='')}:{quote(password, safe='')}@" if password is not None else ""

    def url(db: int, dialect: Literal["kombu", "celery_backend", "redis_py"]) -> str:
        return role_url(r, db, dialect).replace("//", "//" + auth, 1)

    endpoints = [
        RedisEndpoint("broker", "CELERY_CONFIG.broker_url", "kombu", url(dbs.broker, "kombu")),
        RedisEndpoint("results", "CELERY_CONFIG.result_backend", "celery_backend", url(dbs.results, "celery_backend")),
        RedisEndpoint("results", "RESULTS_BACKEND", "redis_url", url(dbs.results, "redis_py")),
        RedisEndpoint("cache", "CACHE_CONFIG", "redis_url", url(dbs.cache, "redis_py"), {"db": 0}),
        RedisEndpoint("data_cache", "DATA_CACHE_CONFIG", "redis_url", url(dbs.data_cache, "redis_py"), {"db": 0}),
    ]
    cache_types = {"CACHE_CONFIG": "RedisCache", "DATA_CACHE_CONFIG": "RedisCache"}
    if settings.global_async_queries.enabled:
        gaq = {
            "CACHE_REDIS_HOST": r.host,
            "CACHE_REDIS_PORT": r.port,
            "CACHE_REDIS_DB": dbs.async_events,
            "CACHE_REDIS_PASSWORD": password,
            "CACHE_REDIS_USER": r.username or "",
            "CACHE_REDIS_SSL": r.tls.enabled,
        }
        endpoints.append(_gaq_endpoint(gaq))
        cache_types["GLOBAL_ASYNC_QUERIES_CACHE_BACKEND"] = "RedisCache"
    return ConfigView(
        loaded=False,
        load_error=error,
        broker_url=endpoints[0].url or "",
        broker_options={"broker_use_ssl": None, "broker_transport_options": {}, "redis_backend_use_ssl": None},
        result_backend=endpoints[1].url,
        endpoints=tuple(endpoints),
        results_backend="RedisCache",
        cache_types=cache_types,
        beat_tasks={name: entry.task for name, entry in settings.celery.beat_schedule.items()},
        celery_config=None,
        redis_password=password,
    )


def same_file(a: str | Path, b: str | Path) -> bool:
    """True when two config paths are the same file, or files with the same bytes (a Nix store copy)."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        return Path(a).read_bytes() == Path(b).read_bytes()
    except OSError:
        return False
