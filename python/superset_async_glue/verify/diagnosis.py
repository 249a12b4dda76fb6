"""The known failure modes of the async stack and how to fix each: the one table of remedies.

Verdicts tag their result with mode codes; a check's remedy is the fix of its first mode (`remedy`);
`diagnose` gathers the modes into findings and resolves the one ambiguity that matters: SQL Lab's
"Failed to start remote query on a worker." (issue code 1035) means "the web could not publish to the
broker", which is either the broker being unreachable or the kombu/redis-py mismatch, and only check 7
can tell the two apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .model import REDIS_PING, CheckResult, Finding, Status

BROKER_UNREACHABLE = "broker-unreachable"
KOMBU_MISMATCH = "kombu-redis-mismatch"
NO_WORKER = "no-worker"
WORKER_OTHER_DB = "worker-other-broker-db"
QUEUE_NOT_CONSUMED = "queue-not-consumed"
LANE_NOT_CONSUMED = "lane-not-consumed"
RESULTS_BACKEND_MISSING = "results-backend-missing"
METADATA_MISMATCH = "metadata-db-mismatch"
GAQ_SECRET = "gaq-secret"  # noqa: S105 - a failure mode's name, not a secret
GAQ_BACKEND = "gaq-backend"
BEAT_MISSING = "beat-missing"
BEAT_DUPLICATE = "beat-duplicate"
TIME_LIMIT = "time-limit-not-enforced"
REDIS_UNREACHABLE = "redis-unreachable"
REDIS_ROLES_SHARED = "redis-roles-shared"
REDIS_NOT_PERSISTENT = "redis-not-persistent"
SENTINEL_UNREACHABLE = "redis-sentinel-unreachable"
SENTINEL_NO_MASTER = "redis-sentinel-no-master"
WEB_DOWN = "web-down"
FORM_LOGIN_BROKEN = "form-login-broken"
ADMIN_LOGIN_REFUSED = "admin-login-refused"
CONFIG_BROKEN = "config-broken"
SERVICE_DOWN = "service-down"
CONFIG_DRIFT = "config-drift"
FLOWER_DOWN = "flower-down"
FLOWER_AUTH = "flower-auth-refused"
FLOWER_BLIND = "flower-sees-no-worker"
REPORTS_BROWSER = "reports-browser"
REPORTS_SMTP = "reports-smtp"
REPORTS_EXECUTOR = "reports-executor"
UNKNOWN = "unrecognised"


@dataclass(frozen=True)
class FailureMode:
    """A known way the stack breaks, named as an operator would search for it."""

    title: str
    fix: str


MODES: dict[str, FailureMode] = {
    BROKER_UNREACHABLE: FailureMode(
        'broker unreachable from the web: SQL Lab answers 500 "Failed to start remote query on a worker." '
        "(issue code 1035)",
        "start Redis (NixOS: systemctl start redis-superset-async; local: superset-async up) and make "
        "redis.host/port/unix_socket/password_file match the server; then run verify again",
    ),
    KOMBU_MISMATCH: FailureMode(
        "kombu/redis-py mismatch in the web's environment: kombu >= 5.7 refuses redis-py < 6.1 (VersionMismatch), "
        'so every publish fails and SQL Lab answers "Failed to start remote query on a worker."',
        "install the locked versions (celery==5.6.3, kombu==5.6.2 with redis 5.x; python/lock/requirements.txt) "
        "into the web's environment and restart web and worker",
    ),
    NO_WORKER: FailureMode(
        "no worker consumes the broker: async queries stay 'pending' forever",
        "start the worker (NixOS: systemctl start superset-async-worker; local: superset-async up) or, if it "
        "hangs, restart it; its log says why it is not consuming",
    ),
    WORKER_OTHER_DB: FailureMode(
        "a worker listens on another broker DB than the web publishes to",
        "give web and worker the same rendered superset_config.py (same redis.dbs.broker) and restart the worker",
    ),
    QUEUE_NOT_CONSUMED: FailureMode(
        "workers answer but none consumes the queue SQL Lab publishes to",
        "drop worker.queues (or add the SQL Lab queue to it) and restart the worker",
    ),
    LANE_NOT_CONSUMED: FailureMode(
        "no worker consumes a SQL Lab lane's queue (sql_lab.lanes): its databases' async queries stay 'pending'",
        "start the lane's worker (NixOS: systemctl start superset-async-worker-NAME; local: superset-async "
        "start-role worker-NAME, or superset-async up); its log (worker-NAME) says why it is not consuming",
    ),
    RESULTS_BACKEND_MISSING: FailureMode(
        "results backend missing: async SQL Lab cannot store or fetch results",
        "render superset_config.py with `superset-async render` (it sets RESULTS_BACKEND on redis.dbs.results) "
        "and remove any extra_config that unsets it; restart web and worker",
    ),
    METADATA_MISMATCH: FailureMode(
        "web and worker use different metadata databases: the worker ran the task but the web's query stayed 'pending'",
        "point web and worker at the same metadata_db (one settings file, one rendered config) and restart the worker",
    ),
    GAQ_SECRET: FailureMode(
        "GLOBAL_ASYNC_QUERIES JWT secret too short or missing (Superset needs at least 32 bytes)",
        "write a long secret (openssl rand -base64 48 > FILE, mode 0600) to global_async_queries.jwt_secret_file "
        "and restart web and worker",
    ),
    GAQ_BACKEND: FailureMode(
        "GLOBAL_ASYNC_QUERIES cache backend or data cache is not Redis: async charts never complete",
        "render the config with `superset-async render` (RedisCache on redis.dbs.async_events and data_cache)",
    ),
    BEAT_MISSING: FailureMode(
        "Celery beat is not running: reports and alerts are never scheduled",
        "start beat (NixOS: systemctl start superset-async-beat; local: superset-async up)",
    ),
    BEAT_DUPLICATE: FailureMode(
        "Celery beat runs more than once: every report is sent twice",
        "stop the extra beat process(es); exactly one beat per stack (beat.enable on one host only)",
    ),
    TIME_LIMIT: FailureMode(
        "SQL Lab's async time limit is not enforced: sql_lab.get_sql_results keeps upstream's 6-hour soft limit",
        "render the config with `superset-async render` (task_annotations gives sql_lab.get_sql_results "
        "soft_time_limit = sql_lab.async_time_limit_seconds; the web sends it with each task), keep the prefork "
        "pool, restart web and worker",
    ),
    REDIS_UNREACHABLE: FailureMode(
        "a Redis role is unreachable (connection refused, wrong password or DB index)",
        "start Redis and make redis.* in the settings match it; the check's reason names the role",
    ),
    REDIS_NOT_PERSISTENT: FailureMode(
        "the broker's Redis has neither AOF nor RDB persistence: a restart of Redis loses every queued task",
        "turn on AOF (redis.conf: appendonly yes; NixOS: services.redis.servers.<name>.appendOnly = true) or at "
        "least RDB snapshots (save 900 1); the runner's and the module's own Redis have AOF on",
    ),
    SENTINEL_UNREACHABLE: FailureMode(
        "no Redis Sentinel answers: no client can learn where the Redis master is, so nothing reaches Redis "
        '(SQL Lab: "Failed to start remote query on a worker.")',
        "start the Sentinels (redis-server sentinel.conf --sentinel) and make redis.sentinel.sentinels list their "
        "host:port; with a Sentinel password (requirepass in sentinel.conf) set redis.sentinel.password_file to it",
    ),
    SENTINEL_NO_MASTER: FailureMode(
        "the Sentinels answer but know no master of redis.sentinel.master_name (a wrong name, or a failover that "
        "found no replica to promote)",
        "make redis.sentinel.master_name the name of `sentinel monitor NAME ...` in sentinel.conf; if the name is "
        "right, bring the Redis master or a replica back (SENTINEL MASTERS on a Sentinel shows its view)",
    ),
    REDIS_ROLES_SHARED: FailureMode(
        "two Redis roles share one DB (keys of one role are evicted or read by another)",
        "give each role its own DB (redis.dbs) and render the config again",
    ),
    WEB_DOWN: FailureMode(
        "the web server does not answer /health",
        "start it (NixOS: systemctl start superset-async-web; local: superset-async up) and read its log",
    ),
    FORM_LOGIN_BROKEN: FailureMode(
        "the login form answers HTTP 500 (Internal server error): nobody can log in with a browser, and every "
        "other WTForms form POST fails too (the REST API login still works)",
        "the known cause is wtforms-json 0.3.4 with WTForms 3 (the web's log shows `process() got an unexpected "
        "keyword argument 'extra_filters'`): install the locked wtforms-json==0.3.5 (python/lock/requirements.txt) "
        "into the web's environment and restart web; another traceback in the web's log names another cause",
    ),
    ADMIN_LOGIN_REFUSED: FailureMode(
        'Superset refuses the admin\'s login ("Invalid login. Please try again."): admin.password_file does not '
        "hold admin.username's password",
        "bootstrap sets the password only when it creates the user and leaves an existing user's as it is: write "
        "the admin's current password to admin.password_file, or reset it (superset fab reset-password "
        "--username USER, with SUPERSET_CONFIG_PATH set) to the file's",
    ),
    CONFIG_BROKEN: FailureMode(
        "superset_config.py does not load the way Superset loads it",
        "fix what the check names (usually a secret file) and render the config again with `superset-async render`",
    ),
    SERVICE_DOWN: FailureMode(
        "a service of the stack is not running, or no stack was found",
        "start it (NixOS: systemctl start UNIT, journalctl -u UNIT; local: superset-async status, then "
        "superset-async up --settings S) or point verify at the stack (--platform, --state-dir)",
    ),
    CONFIG_DRIFT: FailureMode(
        "the config verify was given, the settings and what the stack runs with disagree",
        "render the config again from these settings (superset-async render), restart the roles with it, and "
        "give verify the config the stack really runs with",
    ),
    FLOWER_DOWN: FailureMode(
        "Flower does not answer /healthcheck: no Celery metrics for Prometheus, no monitoring UI",
        "start it (NixOS: systemctl start superset-async-flower, journalctl -u superset-async-flower; local: "
        "superset-async status, then start-role flower) and check flower.bind/port",
    ),
    FLOWER_AUTH: FailureMode(
        "Flower refuses flower.user with the password in flower.password_file (HTTP 401)",
        "restart Flower after changing flower.password_file (it reads the password when it starts), and give "
        "verify the same settings",
    ),
    FLOWER_BLIND: FailureMode(
        "Flower shows no worker online that answers on the broker: its /metrics miss the workers' events",
        "give Flower and the workers the same rendered config (same broker DB); restart Flower; workers send "
        "heartbeats every 2 s, so wait a few seconds after a start",
    ),
    REPORTS_BROWSER: FailureMode(
        "the report browser does not start (or barely): no screenshot, every PNG report fails",
        "install chromium and chromium-driver (Debian) or point reports.webdriver.chromium_path and "
        "chromedriver_path at nixpkgs' chromium and chromedriver; under systemd the worker unit needs "
        "SystemCallErrorNumber=EPERM (and MemoryDenyWriteExecute=false with jitless off); the reason quotes "
        "the browser's own message (docs/reports.md)",
    ),
    REPORTS_SMTP: FailureMode(
        "the SMTP server does not answer: report e-mails cannot be sent",
        "make reports.smtp.host/port and ssl/starttls match the server (ssl for 465, starttls for 587) and let "
        "this host reach it; verify only says EHLO, it sends no mail",
    ),
    REPORTS_EXECUTOR: FailureMode(
        "the reports executor user is missing or inactive: every report ends in error",
        "set reports.executor to an active user, or leave it unset to use admin.username (bootstrap creates it)",
    ),
    UNKNOWN: FailureMode(
        "a check failed in a way verify does not recognise",
        "read the check's reason and the logs of the roles it names; if verify itself failed, report it with "
        "the output of verify --json",
    ),
}


def remedy(modes: Sequence[str]) -> str:
    """A check's remedy: the fix of the first failure mode it points at."""
    return MODES[modes[0] if modes else UNKNOWN].fix


def diagnose(results: Sequence[CheckResult]) -> tuple[Finding, ...]:
    """Every failure mode the failed or warning checks point at, in the order they were first seen."""
    seen: dict[str, list[int]] = {}
    for result in sorted(results, key=lambda r: r.spec.number):
        if result.status not in (Status.FAIL, Status.WARN):
            continue
        modes = result.modes or ((UNKNOWN,) if result.status is Status.FAIL else ())
        for code in modes:
            seen.setdefault(code, []).append(result.spec.number)
    # 1035 (SQL Lab could not publish) is the mismatch, not an unreachable broker, when check 7 saw the
    # mismatch and Redis itself answered (checks 2 and 7 found no unreachable broker).
    if KOMBU_MISMATCH in seen and BROKER_UNREACHABLE in seen:
        broker_down = any(
            r.spec is REDIS_PING and BROKER_UNREACHABLE in r.modes and r.status is Status.FAIL for r in results
        )
        if not broker_down:
            seen[KOMBU_MISMATCH] = sorted({*seen[KOMBU_MISMATCH], *seen.pop(BROKER_UNREACHABLE)})
    return tuple(Finding(code, MODES[code].title, MODES[code].fix, tuple(numbers)) for code, numbers in seen.items())
