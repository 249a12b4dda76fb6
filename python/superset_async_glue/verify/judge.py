"""The nine verdicts: pure functions from facts (facts.py) to a CheckResult. No I/O, no clock.

Each names the failure modes it sees; the remedy is the fix of the first (diagnosis.MODES), so that a
fix is written once. tests/python/test_verify_verdicts.py runs every verdict from hand-written facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from . import diagnosis as dx
from .facts import (
    SQLLAB_TASK,
    UNKNOWN_DB,
    BeatFacts,
    ConfigFacts,
    EndToEndFacts,
    FlowerFacts,
    Identity,
    Persistence,
    Ping,
    RedisFacts,
    RoundTripFacts,
    SentinelFacts,
    ServiceFacts,
    WebEnvFacts,
    WorkerSurvey,
)
from .model import (
    BEAT,
    CONFIG,
    END_TO_END,
    FLOWER,
    REDIS_PING,
    REDIS_ROLES,
    SERVICES,
    WEB_REDIS,
    WORKER_REDIS,
    WORKERS,
    CheckResult,
    failed,
    passed,
    skipped,
    warned,
)

UPSTREAM_SOFT_LIMIT = 21600  # sql_lab.get_sql_results' hard-coded soft_time_limit in Superset 6.1.0
PING_TIMEOUT = 1.0  # seconds a worker has to answer a ping (workers.py)
REPORTS_TASKS = ("reports.scheduler",)
REDIS_CACHES = ("RedisCache", "redis", "RedisSentinelCache", "MasterSentinelCache")
ROLES = ("broker", "results", "cache", "data_cache", "async_events")
# The failure mode a role that is down points at.
DOWN_MODES = {
    "redis": dx.BROKER_UNREACHABLE,
    "web": dx.WEB_DOWN,
    "worker": dx.NO_WORKER,
    "beat": dx.BEAT_MISSING,
}


def _unique(modes: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(modes))


def _joined(problems: list[tuple[str, str]]) -> tuple[str, tuple[str, ...]]:
    return "; ".join(text for text, _ in problems), _unique(mode for _, mode in problems)


def _where(identity: Identity | None) -> str:
    return "/".join(map(str, identity)) if identity else "?"


# -- 1 services --------------------------------------------------------------------------------------


def judge_services(facts: ServiceFacts) -> CheckResult:
    """Every role of this host's stack is up, and the web answers /health."""
    platform, health = facts.platform, facts.web_health
    if platform.problem and not platform.roles:
        return failed(SERVICES, platform.problem, (dx.SERVICE_DOWN,))
    down = [r for r in platform.roles.values() if r.present and not r.running]
    elsewhere = [r.role for r in platform.roles.values() if not r.present]
    web = platform.role("web")
    web_here = web is None or web.present or platform.kind == "none"
    web_down = web_here and health != "200"
    if down or web_down:
        modes = [DOWN_MODES.get(r.role, dx.SERVICE_DOWN) for r in down]
        if web_down:
            modes.append(dx.WEB_DOWN)
        what = ", ".join(f"{r.role} {r.state}" for r in down) or "all roles running"
        return failed(SERVICES, f"{what}; web /health: {health}", _unique(modes))
    parts = [f"{r.role} {r.state}" for r in platform.roles.values() if r.present]
    if elsewhere:
        parts.append(f"not on this host: {', '.join(elsewhere)}")
    reason = f"{platform.kind}: " + ", ".join(parts) + f"; web /health {health}"
    if platform.problem:
        return warned(SERVICES, f"{reason}; but {platform.problem}", (dx.CONFIG_DRIFT,))
    return passed(SERVICES, reason)


# -- 2 and 3 Redis -----------------------------------------------------------------------------------


def _ping_mode(ping: Ping) -> str:
    return dx.BROKER_UNREACHABLE if ping.role == "broker" else dx.REDIS_UNREACHABLE


def judge_redis_ping(facts: RedisFacts) -> CheckResult:
    """Redis answers PING through every client the rendered config builds."""
    if facts.config_error is not None:
        return skipped(REDIS_PING, "the config did not import, so it builds no Redis client to ping (check 6 says why)")
    sentinel_note, sentinel_failure = _sentinel_verdict(facts.sentinel)
    if sentinel_failure is not None:
        return sentinel_failure
    pings = facts.pings
    bad = [p for p in pings if not p.ok]
    if bad:
        reason = "; ".join(f"{p.label} on {p.server}/{p.db}: {p.error}" for p in bad)
        return failed(
            REDIS_PING,
            f"{sentinel_note}{len(bad)} of {len(pings)} clients got no PONG: {reason}",
            _unique(_ping_mode(p) for p in bad),
        )
    slowest = max((p.seconds for p in pings), default=0.0)
    servers = sorted({p.server for p in pings})
    pong = (
        f"{sentinel_note}PONG from {len(pings)} clients ({', '.join(p.client for p in pings)}) "
        f"on {', '.join(servers)}; slowest {slowest * 1000:.0f} ms"
    )
    persistence = facts.broker_persistence
    if persistence is not None and persistence.unknown is None and not (persistence.aof or persistence.rdb):
        return warned(
            REDIS_PING,
            f"{pong}; but the broker's Redis persists nothing (appendonly no, save ''): a restart loses queued tasks",
            (dx.REDIS_NOT_PERSISTENT,),
        )
    silent = [a for a in facts.sentinel.answers if a.error] if facts.sentinel else []
    if silent:
        return warned(
            REDIS_PING,
            f"{pong}; but {len(silent)} Sentinel(s) did not answer ("
            + "; ".join(f"{a.sentinel}: {a.error}" for a in silent)
            + "): fewer left to agree on the next failover",
            (dx.SENTINEL_UNREACHABLE,),
        )
    return passed(REDIS_PING, f"{pong}{_persistence_note(persistence)}")


def _sentinel_verdict(sentinel: SentinelFacts | None) -> tuple[str, CheckResult | None]:
    """The master the Sentinels name, as a prefix of check 2's reason, or check 2's failure when none can."""
    if sentinel is None:
        return "", None
    answers, name = sentinel.answers, sentinel.master_name
    if not any(a.error is None for a in answers):
        reason = "; ".join(f"{a.sentinel}: {a.error}" for a in answers)
        return "", failed(REDIS_PING, f"no Sentinel answered ({reason})", (dx.SENTINEL_UNREACHABLE,))
    masters = sentinel.masters
    if not masters:
        asked = ", ".join(a.sentinel for a in answers if a.error is None)
        return "", failed(
            REDIS_PING, f"the Sentinels ({asked}) know no master named {name!r}", (dx.SENTINEL_NO_MASTER,)
        )
    agree = sum(1 for a in answers if a.master == masters[0])
    note = f"Sentinel: master {name!r} is {masters[0]} ({agree} of {len(answers)} Sentinels)"
    if len(masters) > 1:
        note += f", others name {', '.join(masters[1:])} (a failover in progress?)"
    return note + "; ", None


def _persistence_note(persistence: Persistence | None) -> str:
    if persistence is None:
        return ""
    if persistence.unknown is not None:
        return f"; broker persistence unknown ({persistence.unknown})"
    kinds = [name for name, on in (("AOF", persistence.aof), ("RDB", persistence.rdb)) if on]
    return f"; broker persists with {' and '.join(kinds)}"


def judge_redis_roles(facts: RedisFacts) -> CheckResult:
    """Every role has its own DB, the caches are Redis, and the DBs are the settings'.

    Reachability is check 2's verdict and the results backend check 6's: neither is repeated here.
    """
    if facts.config_error is not None:
        return skipped(REDIS_ROLES, "the config did not import: no Redis DB to compare (check 6 says why)")
    roles: dict[tuple[str, int], set[str]] = {}
    for p in facts.pings:
        if p.db >= 0:
            roles.setdefault((p.server, p.db), set()).add(p.role)
    table = {role: sorted({f"{p.server}/{p.db}" for p in facts.pings if p.role == role}) for role in ROLES}
    problems: list[tuple[str, str]] = []
    for (server, db), names in sorted(roles.items()):
        if len(names) > 1:
            problems.append((f"roles {', '.join(sorted(names))} share {server}/{db}", dx.REDIS_ROLES_SHARED))
    for key, kind in facts.cache_types.items():
        if kind not in REDIS_CACHES:
            mode = dx.GAQ_BACKEND if facts.gaq_enabled and key != "CACHE_CONFIG" else dx.CONFIG_DRIFT
            problems.append((f"{key} is {kind}, not Redis", mode))
    if problems:
        return failed(REDIS_ROLES, *_joined(problems))
    drift = [
        f"{role} is DB {db} in the config, {facts.settings_dbs[role]} in the settings"
        for (_server, db), names in sorted(roles.items())
        for role in sorted(names)
        if role in facts.settings_dbs and db != facts.settings_dbs[role]
    ]
    reason = ", ".join(
        f"{role} {'/'.join(x.rsplit('/', 1)[1] for x in where)}" for role, where in table.items() if where
    )
    if drift:
        return warned(REDIS_ROLES, f"roles on distinct DBs ({reason}), but {'; '.join(drift)}", (dx.CONFIG_DRIFT,))
    return passed(REDIS_ROLES, f"one DB per role: {reason}")


# -- 4 workers ---------------------------------------------------------------------------------------


def same_redis(a: Identity | None, b: Identity | None) -> bool:
    """Same server and DB; a DB a worker does not report (UNKNOWN_DB) matches any."""
    if a is None or b is None:
        return a is b
    return a == b or (a[0] == b[0] and UNKNOWN_DB in (a[1], b[1]))


def judge_workers(survey: WorkerSurvey) -> CheckResult:  # noqa: PLR0911 - one return per verdict
    """Workers answer, register sql_lab.get_sql_results, consume SQL Lab's queue, share the web's broker."""
    if survey.config_error is not None:
        return skipped(WORKERS, "the config did not import: no broker to ask the workers on (check 6 says why)")
    if survey.error:
        return failed(WORKERS, f"cannot ask the workers: {survey.error}", (dx.BROKER_UNREACHABLE,))
    db = survey.broker[1]
    if not survey.workers:
        elsewhere = {d: names for d, names in survey.other_dbs.items() if names} or {
            d: [] for d in survey.listeners if d != db
        }
        if elsewhere:
            where = "; ".join(f"DB {d}: {', '.join(n) or 'listening clients'}" for d, n in elsewhere.items())
            modes = (dx.WORKER_OTHER_DB, dx.NO_WORKER) if survey.listeners.get(db) else (dx.WORKER_OTHER_DB,)
            return failed(
                WORKERS,
                f"no worker answers on broker DB {db}, but workers listen on another DB of the same Redis ({where})",
                modes,
            )
        hung = survey.listeners.get(db, 0)
        extra = f" ({hung} Redis connection(s) still subscribed there: a stopped or hung worker?)" if hung else ""
        return failed(
            WORKERS,
            f"no worker answered a ping within {PING_TIMEOUT:.0f}s on broker DB {db}{extra}; "
            "async queries would stay pending",
            (dx.NO_WORKER,),
        )
    problems: list[tuple[str, str]] = []
    for w in survey.workers:
        if not w.sqllab_registered:
            problems.append(
                (f"{w.name} has no {SQLLAB_TASK} (celery.imports lacks superset.sql_lab?)", dx.QUEUE_NOT_CONSUMED)
            )
        if w.broker and not same_redis(w.broker, survey.broker):
            problems.append(
                (f"{w.name} uses broker {_where(w.broker)}, the web {_where(survey.broker)}", dx.WORKER_OTHER_DB)
            )
    if not any(survey.queue in w.queues for w in survey.workers):
        problems.append((f"no worker consumes queue {survey.queue!r} (SQL Lab publishes there)", dx.QUEUE_NOT_CONSUMED))
    for lane_queue in survey.lane_queues:
        if not any(lane_queue in w.queues for w in survey.workers):
            text = f"no worker consumes SQL Lab lane queue {lane_queue!r} (its databases' queries stay pending)"
            problems.append((text, dx.LANE_NOT_CONSUMED))
    if problems:
        return failed(WORKERS, *_joined(problems))
    summary = (
        f"{len(survey.workers)} worker(s) ({', '.join(survey.names)}) answer in {survey.seconds:.2f}s, "
        f"register {SQLLAB_TASK}, consume {survey.queue!r}"
        + "".join(f", {q!r}" for q in survey.lane_queues)
        + f" on {_where(survey.broker)}"
    )
    foreign = [w for w in survey.workers if w.runs_web_config is False]
    if foreign:
        text = ", ".join(f"{w.name} (pid {w.pid}) runs {w.config_path}" for w in foreign)
        return warned(WORKERS, f"{summary}; but {text}, not {survey.web_config}", (dx.METADATA_MISMATCH,))
    return passed(WORKERS, summary)


# -- 5 beat ------------------------------------------------------------------------------------------


def judge_beat(facts: BeatFacts) -> CheckResult:  # noqa: PLR0911 - one return per verdict
    """Exactly one Celery beat for this stack, and a schedule that holds the reports tasks."""
    platform, pids = facts.platform, facts.pids
    role = platform.role("beat")
    if platform.kind == "systemd" and role is not None and not role.present and not pids:
        return skipped(
            BEAT,
            "no superset-async-beat unit on this host; beat runs elsewhere or nowhere "
            "(verify on the host with beat.enable)",
        )
    if not facts.enabled and not pids:
        return skipped(BEAT, "beat.enabled is false in the settings: no beat on this stack")
    if not pids:
        state = f" ({role.role} {role.state})" if role is not None else ""
        return failed(
            BEAT,
            f"no celery beat process of this stack is running{state}: reports are never scheduled",
            (dx.BEAT_MISSING,),
        )
    if len(pids) > 1:
        return failed(
            BEAT,
            f"{len(pids)} celery beat processes of this stack run (pids {', '.join(map(str, pids))}): "
            "every scheduled report is sent more than once",
            (dx.BEAT_DUPLICATE,),
        )
    if not facts.enabled:
        return warned(BEAT, f"beat runs (pid {pids[0]}) although beat.enabled is false", (dx.BEAT_DUPLICATE,))
    tasks = facts.schedule
    missing = [t for t in REPORTS_TASKS if tasks is not None and t not in tasks.values()]
    if missing:
        return failed(
            BEAT,
            f"one beat (pid {pids[0]}), but its schedule lacks {', '.join(missing)}",
            (dx.BEAT_MISSING,),
        )
    unit = f", unit {role.state}" if role and platform.kind == "systemd" else ""
    schedule = ", ".join(sorted(tasks.values())) if tasks is not None else "unknown (the config did not import)"
    host_note = (
        " (this host only: on a multi-host stack make sure no other host runs beat)"
        if platform.kind == "systemd"
        else ""
    )
    return passed(BEAT, f"exactly one beat (pid {pids[0]}{unit}); schedule: {schedule}{host_note}")


# -- 6 config ----------------------------------------------------------------------------------------


def _config_mode(message: str) -> str:
    return dx.GAQ_SECRET if "global_async_queries" in message else dx.CONFIG_BROKEN


def _backend_and_flag_problems(facts: ConfigFacts) -> list[tuple[str, str]]:
    problems = []
    if facts.results_backend is None:
        problems.append(("RESULTS_BACKEND is None: async SQL Lab cannot store results", dx.RESULTS_BACKEND_MISSING))
    if not facts.celery_result_backend:
        problems.append(("CELERY_CONFIG has no result_backend", dx.RESULTS_BACKEND_MISSING))
    for flag, wanted in facts.wanted_flags.items():
        found = facts.feature_flags.get(flag)
        if found != wanted:
            shown = "not set by the config (Superset's default applies)" if found is None else f"is {found}"
            problems.append((f"feature flag {flag} {shown}, the settings say {wanted}", dx.CONFIG_BROKEN))
    if facts.feature_flags.get("GLOBAL_ASYNC_QUERIES"):
        if facts.gaq_secret_bytes < 32 or facts.gaq_secret_is_default:
            default = " (the default)" if facts.gaq_secret_is_default else ""
            problems.append(
                (
                    f"GLOBAL_ASYNC_QUERIES_JWT_SECRET is {facts.gaq_secret_bytes} bytes{default}; Superset needs >= 32",
                    dx.GAQ_SECRET,
                )
            )
        for key, kind in (
            ("GLOBAL_ASYNC_QUERIES_CACHE_BACKEND", facts.gaq_cache_type),
            ("DATA_CACHE_CONFIG", facts.data_cache_type),
        ):
            if kind not in REDIS_CACHES:
                problems.append((f"{key} is {kind}: GAQ results and events need Redis", dx.GAQ_BACKEND))
    return problems


def _time_limit_problems(facts: ConfigFacts) -> tuple[int, list[tuple[str, str]]]:
    """The soft limit the config gives sql_lab.get_sql_results, and where it is not what the settings ask."""
    annotation = facts.sqllab_annotation
    soft = int(annotation.get("soft_time_limit", UPSTREAM_SOFT_LIMIT))
    problems = []
    if soft != facts.wanted_time_limit:
        upstream = " (no task annotation: upstream's hard-coded 6 h)" if not annotation else ""
        problems.append(
            (
                f"{SQLLAB_TASK} gets soft_time_limit {soft}s from the config, not "
                f"sql_lab.async_time_limit_seconds ({facts.wanted_time_limit}s){upstream}",
                dx.TIME_LIMIT,
            )
        )
    # Celery puts the sender's limits in each message ("timelimit") and the worker applies them over its
    # own task's, so the web's config decides the limit; the worker only has to be able to enforce it.
    for name, pool in facts.worker_pools:
        if pool and "prefork" not in pool:
            problems.append((f"worker {name} runs the {pool} pool: no time limit is enforced", dx.TIME_LIMIT))
    return soft, problems


def judge_config(facts: ConfigFacts) -> CheckResult:
    """The rendered config imports as Superset imports it and sets what the async stack needs."""
    problems = [(message, _config_mode(location)) for message, location in facts.secret_problems]
    seen: set[str] = set()
    for where, error in (("in verify", facts.load_error), ("in the web's interpreter", facts.web_import_error)):
        if error is not None and (message := error.split(": ", 1)[-1]) not in seen:  # the same error once
            seen.add(message)
            problems.append((f"superset_config.py does not import {where}: {error}", _config_mode(error)))
    if not facts.loaded:
        return failed(CONFIG, *_joined(problems or [("the config did not import", dx.CONFIG_BROKEN)]))
    problems += _backend_and_flag_problems(facts)
    soft, limit_problems = _time_limit_problems(facts)
    problems += limit_problems
    if problems:
        return failed(CONFIG, *_joined(problems))
    gaq = (
        f"on (secret {facts.gaq_secret_bytes} bytes, {facts.gaq_cache_type})"
        if facts.feature_flags.get("GLOBAL_ASYNC_QUERIES")
        else "off"
    )
    pools = (
        f" (sent with each task; {len(facts.worker_pools)} prefork worker(s) enforce it)" if facts.worker_pools else ""
    )
    reason = (
        f"imported in {facts.import_seconds}s; RESULTS_BACKEND {facts.results_backend}; GAQ {gaq}; "
        f"{SQLLAB_TASK} soft_time_limit {soft}s{pools}; metadata {facts.metadata_uri}"
    )
    if facts.metadata_uri != facts.wanted_metadata_uri:
        return warned(CONFIG, f"{reason}; but the settings name {facts.wanted_metadata_uri}", (dx.CONFIG_DRIFT,))
    return passed(CONFIG, reason)


# -- 7 the web's environment -------------------------------------------------------------------------


def version_tuple(text: str | None) -> tuple[int, ...]:
    parts = []
    for piece in (text or "0").split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def judge_web_redis(facts: WebEnvFacts) -> CheckResult:
    """From the web's environment, a publish and consume through kombu on the broker works."""
    if facts.config_error is not None:
        return skipped(WEB_REDIS, "the config did not import: no broker to publish to (check 6 says why)")
    if facts.failure is not None:
        return failed(WEB_REDIS, facts.failure, (dx.CONFIG_BROKEN,))
    v = facts.versions
    env = (
        f"python {facts.python} ({facts.how}): kombu {v.get('kombu')}, redis-py {v.get('redis')}, "
        f"celery {v.get('celery')}"
    )
    mismatch = version_tuple(v.get("kombu")) >= (5, 7) and version_tuple(v.get("redis")) < (6, 1)
    if "VersionMismatch" in facts.error_type or mismatch:
        message = facts.error_message or "kombu >= 5.7 needs redis-py >= 6.1"
        return failed(WEB_REDIS, f"{env}: publish failed: {message}", (dx.KOMBU_MISMATCH,))
    if not facts.publish_ok:
        return failed(
            WEB_REDIS,
            f"{env}: kombu publish to the broker: {facts.error_type}: {facts.error_message}",
            (dx.BROKER_UNREACHABLE,),
        )
    return passed(
        WEB_REDIS,
        f"{env}: published and consumed a message on the broker through kombu in {facts.publish_ms} ms",
    )


# -- 8 the worker's side -----------------------------------------------------------------------------


def judge_worker_redis(facts: RoundTripFacts) -> CheckResult:
    """A task round trip through SQL Lab's queue: the worker consumes the broker and writes results to the
    Redis the web reads them from."""
    survey = facts.survey
    if not survey.workers:
        return skipped(WORKER_REDIS, "no worker answers on the broker (check 4): no worker connection to test")
    if not facts.configured:
        return skipped(WORKER_REDIS, "the config has no Celery result_backend (check 6): no round trip to test")
    ours = facts.result_backend
    elsewhere = [w for w in survey.workers if w.result_backend and not same_redis(w.result_backend, ours)]
    if elsewhere:
        text = ", ".join(f"{w.name} stores results in {_where(w.result_backend)}" for w in elsewhere)
        return failed(WORKER_REDIS, f"{text}; the web reads {_where(ours)}", (dx.RESULTS_BACKEND_MISSING,))
    if not facts.came_back:
        return failed(
            WORKER_REDIS,
            f"a task sent to {survey.queue!r} came back as {facts.answer[:200]!r} after {facts.seconds:.1f}s",
            (dx.NO_WORKER,),
        )
    return passed(
        WORKER_REDIS,
        f"task round trip through {survey.queue!r} and the result backend ({_where(ours)}) in "
        f"{facts.seconds * 1000:.0f} ms",
    )


# -- 9 end to end ------------------------------------------------------------------------------------


def judge_end_to_end(facts: EndToEndFacts) -> CheckResult:
    """The admin logs in (form and API), every async database answers a query, GAQ completes a job."""
    if facts.skip is not None:
        return skipped(END_TO_END, facts.skip)
    if facts.login_error is not None or facts.form is None or facts.api_login is None:
        return failed(END_TO_END, facts.login_error or "no login was tried", (dx.ADMIN_LOGIN_REFUSED,))
    form, api = facts.form, facts.api_login
    if not api.ok:
        modes = _unique((*form.modes, *api.modes))
        return failed(END_TO_END, f"{form.name}: {form.text}; REST API login: {api.text}", modes)
    if not form.ok:
        form = replace(form, text=f"{form.text} (the REST API login works)")
    steps = [form, *facts.steps]
    bad = [s for s in steps if not s.ok]
    text = "; ".join(f"{s.name}: {s.text}" for s in (bad or steps))
    if bad:
        return failed(END_TO_END, text, _unique(m for s in bad for m in s.modes) or (dx.UNKNOWN,))
    return passed(END_TO_END, text)


def api_login_mode(status: int | None) -> str:
    """The failure mode of a refused REST API login: None is no answer at all."""
    if status is None:
        return dx.WEB_DOWN
    return dx.ADMIN_LOGIN_REFUSED if status == 401 else dx.UNKNOWN  # 401 "Not authorized": wrong password


def form_login_modes(status: int, back_to_login: bool, messages: tuple[str, ...]) -> tuple[str, ...]:
    """Why the login form did not log the admin in: a 500 is the broken form, "Invalid login" the password."""
    if status >= 500:
        return (dx.FORM_LOGIN_BROKEN,)
    if back_to_login and any("Invalid login" in m for m in messages):
        return (dx.ADMIN_LOGIN_REFUSED,)
    return (dx.UNKNOWN,)


def submit_error_mode(message: str, issue_codes: tuple[int, ...], async_workers_issue: int) -> str:
    """SQL Lab refused the async query: 1035 is a publish to the broker that failed."""
    if async_workers_issue in issue_codes or "Failed to start remote query" in message:
        return dx.BROKER_UNREACHABLE
    return dx.RESULTS_BACKEND_MISSING if "Results backend" in message else dx.UNKNOWN


def query_error_mode(error: str) -> str:
    """The failure mode of an async query that ended other than 'success'."""
    if "Results backend" in error:
        return dx.RESULTS_BACKEND_MISSING
    return dx.TIME_LIMIT if "killed after" in error else dx.UNKNOWN


def pending_modes(survey: WorkerSurvey) -> tuple[tuple[str, ...], str]:
    """A query pending with no worker answering: whom it waits for, and why nobody comes."""
    why = (
        "no worker answers on the broker"
        if not survey.other_dbs and not survey.listeners
        else "no worker answers on the web's broker DB (check 4)"
    )
    modes = (dx.WORKER_OTHER_DB,) if any(survey.other_dbs.values()) else (dx.NO_WORKER,)
    return modes, why


# -- 10 Flower (when flower.enabled) -----------------------------------------------------------------


def judge_flower(facts: FlowerFacts) -> CheckResult:
    """Flower answers, accepts its own credentials and sees every worker that answers on the broker."""
    if facts.health != "200":
        return failed(FLOWER, f"{facts.url}healthcheck: {facts.health}", (dx.FLOWER_DOWN,))
    if facts.api == "401":
        return failed(FLOWER, f"{facts.url}api/workers refused the configured credentials (401)", (dx.FLOWER_AUTH,))
    missing = sorted(set(facts.pinged) - set(facts.online))
    if missing or not facts.online:
        shown = ", ".join(facts.online) or "none"
        return failed(
            FLOWER,
            f"Flower shows online: {shown}; answering on the broker but not online in Flower: "
            f"{', '.join(missing) or 'none'}",
            (dx.FLOWER_BLIND,),
        )
    return passed(
        FLOWER,
        f"{facts.url}: {len(facts.online)} worker(s) online in /metrics ({', '.join(facts.online)}); API {facts.api}",
    )
