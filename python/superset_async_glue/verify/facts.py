"""What the gather layer found, as plain values: the only input of the verdicts (judge.py).

Nothing here does I/O or holds a connection; every field is something a test can write by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["local", "systemd", "none"]
Identity = tuple[str, int]  # (server, db): "unix:/path" or "host:port", and the Redis DB number
UNKNOWN_DB = -1  # a worker's `inspect conf` drops a socket URL's query, and with it the DB
SQLLAB_TASK = "sql_lab.get_sql_results"  # the Celery task of an async SQL Lab query


@dataclass(frozen=True)
class RoleView:
    """One role of the stack as this host sees it."""

    role: str
    present: bool  # part of the stack on this host (recorded in stack.json, or its unit exists)
    running: bool
    state: str
    pids: tuple[int, ...] = ()


@dataclass(frozen=True)
class PlatformView:
    """Where the stack runs and the state of each of its roles on this host."""

    kind: Kind
    source: str
    roles: Mapping[str, RoleView]
    problem: str | None = None

    def role(self, name: str) -> RoleView | None:
        return self.roles.get(name)

    def pid(self, name: str) -> int | None:
        role = self.roles.get(name)
        return role.pids[0] if role and role.pids and role.running else None


@dataclass(frozen=True)
class ServiceFacts:
    """Check 1's input: the platform and what the web's /health answered ("200", "503", "unreachable (...)")."""

    platform: PlatformView
    web_health: str


@dataclass(frozen=True)
class Ping:
    """One Redis client's PING: where it went (server, db), whether Redis answered, and how fast."""

    role: str  # a key of settings.redis.dbs
    client: str  # the config key that builds it
    server: str
    db: int
    ok: bool
    seconds: float
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.role} ({self.client})"


@dataclass(frozen=True)
class Persistence:
    """The broker Redis's persistence (CONFIG GET appendonly, save), or why it is unknown."""

    aof: bool = False
    rdb: bool = False
    unknown: str | None = None  # CONFIG refused (an ACL without +config, a managed Redis) or failed: why


@dataclass(frozen=True)
class SentinelAnswer:
    """What one Sentinel said when asked for the master's address (SENTINEL get-master-addr-by-name)."""

    sentinel: str  # host:port
    master: str | None = None  # host:port; None: it knows no master of that name, or did not answer
    error: str | None = None  # it did not answer (refused, timed out, wrong password)


@dataclass(frozen=True)
class SentinelFacts:
    """With redis.sentinel: every configured Sentinel's answer for the master name the config uses."""

    master_name: str
    answers: tuple[SentinelAnswer, ...]

    @property
    def masters(self) -> list[str]:
        """The master addresses reported, most reported first."""
        found = [a.master for a in self.answers if a.master]
        return sorted(set(found), key=lambda m: (-found.count(m), m))


@dataclass(frozen=True)
class RedisFacts:
    """Checks 2 and 3's input: a PING through every Redis client the config builds, and the DB each role
    has in the settings and in the config."""

    config_error: str | None  # the config did not import: there is no client to ping
    pings: tuple[Ping, ...] = ()
    settings_dbs: Mapping[str, int] = field(default_factory=dict)
    cache_types: Mapping[str, str] = field(default_factory=dict)  # CACHE_CONFIG etc. -> CACHE_TYPE
    gaq_enabled: bool = False
    broker_persistence: Persistence | None = None  # None: not asked (the broker did not answer PING)
    sentinel: SentinelFacts | None = None  # None: the config reaches Redis without Sentinel


@dataclass(frozen=True)
class Worker:
    """What one worker said about itself."""

    name: str
    queues: tuple[str, ...] = ()
    sqllab_registered: bool = False
    soft_time_limit: int | None = None
    time_limit: int | None = None
    pool: str = ""
    pid: int | None = None
    broker: Identity | None = None  # from its stats
    result_backend: Identity | None = None  # from its conf
    config_path: str | None = None  # SUPERSET_CONFIG_PATH, when the worker runs on this host
    runs_web_config: bool | None = None  # that file is the web's config (None: not known here)


@dataclass(frozen=True)
class FlowerFacts:
    """The optional Flower check's input: what Flower answered, and the workers verify's own ping found."""

    url: str
    health: str  # /healthcheck: "200", "503", "unreachable (...)"
    online: tuple[str, ...]  # workers /metrics shows online (flower_worker_online 1)
    api: str  # /api/workers with basic auth: "200", "401", "not asked (no flower.password_file)", ...
    pinged: tuple[str, ...]  # workers that answered verify's ping on the broker (check 4's survey)


@dataclass(frozen=True)
class WorkerSurvey:
    """Every worker that answered on the broker, and what verify found when none did."""

    workers: tuple[Worker, ...]
    queue: str  # the queue SQL Lab publishes to
    broker: Identity
    seconds: float
    error: str | None = None
    other_dbs: Mapping[int, list[str]] = field(default_factory=dict)  # broker DB -> workers answering there
    listeners: Mapping[int, int] = field(default_factory=dict)  # DB -> Redis clients subscribed to broadcasts
    config_error: str | None = None  # the config did not import: no broker to ask
    web_config: str = ""  # the config verify was given (the web's)
    lane_queues: tuple[str, ...] = ()  # the SQL Lab lanes' queues (sql_lab.lanes), each needing a consumer

    @property
    def names(self) -> list[str]:
        return [w.name for w in self.workers]


@dataclass(frozen=True)
class BeatFacts:
    """Check 5's input: this host's beat processes of this stack, and what the settings and config say."""

    platform: PlatformView
    pids: tuple[int, ...]
    enabled: bool  # settings.beat.enabled
    schedule: Mapping[str, str] | None  # beat_schedule entry -> task; None when the config did not import


@dataclass(frozen=True)
class ConfigFacts:
    """Check 6's input: the rendered config as imported (in verify and in the web's interpreter) over
    Superset's defaults, the secret files, the settings it should match, and the workers' pools."""

    load_error: str | None  # the import in verify's process
    web_import_error: str | None  # the import in the web's interpreter, as Superset does it
    secret_problems: tuple[tuple[str, str], ...] = ()  # (message, settings location)
    import_seconds: float | None = None  # the web's import of the config
    results_backend: str | None = None  # RESULTS_BACKEND's class name
    celery_result_backend: bool = False  # CELERY_CONFIG has a result_backend
    feature_flags: Mapping[str, bool | None] = field(default_factory=dict)  # None: not set by the config
    gaq_secret_bytes: int = 0
    gaq_secret_is_default: bool = False
    gaq_cache_type: str = ""
    data_cache_type: str = ""
    sqllab_annotation: Mapping[str, Any] = field(default_factory=dict)
    metadata_uri: str = ""  # password masked
    wanted_flags: Mapping[str, bool] = field(default_factory=dict)
    wanted_time_limit: int = 0
    wanted_metadata_uri: str = ""  # password masked
    worker_pools: tuple[tuple[str, str], ...] = ()  # (worker, pool) of the workers that answered

    @property
    def loaded(self) -> bool:
        return self.load_error is None and self.web_import_error is None


@dataclass(frozen=True)
class WebEnvFacts:
    """Check 7's input: the web's interpreter, its library versions, and its kombu publish on the broker."""

    python: str
    how: str  # how the interpreter was found
    failure: str | None = None  # the probe gave no answer (why)
    config_error: str | None = None  # the config did not import in verify: no broker to publish to
    versions: Mapping[str, str | None] = field(default_factory=dict)
    publish_ok: bool = False
    publish_ms: float | None = None
    error_type: str = ""
    error_message: str = ""


@dataclass(frozen=True)
class RoundTripFacts:
    """Check 8's input: a built-in task sent to SQL Lab's queue and what came back through the result backend."""

    survey: WorkerSurvey
    result_backend: Identity | None  # the one the web reads; None: the config has none
    configured: bool  # CELERY_CONFIG has a result_backend
    came_back: bool = False
    answer: str = ""  # what came back instead, or the error
    seconds: float = 0.0


@dataclass(frozen=True)
class Step:
    """One part of check 9: the form login, a database's query, the GAQ round trip."""

    name: str
    ok: bool
    seconds: float
    text: str
    modes: tuple[str, ...] = ()
    query_id: int | None = None


@dataclass(frozen=True)
class EndToEndFacts:
    """Check 9's input: why it did not run, or each step it ran."""

    skip: str | None = None
    login_error: str | None = None  # cannot even try (the password file)
    form: Step | None = None
    api_login: Step | None = None
    steps: tuple[Step, ...] = ()  # queries and the GAQ round trip
