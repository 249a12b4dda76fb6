"""Odd input never crashes `check` nor leaks a secret: each run ends 0 or 2 with located problems.

Everything runs in this process through the CLI's entry point (test_settings.run_main), so a few
thousand generated settings files take seconds. The generator is a seeded `random.Random` (the
environment has no hypothesis): the same inputs on every run, and a failure names its seed.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fixtures.common import write_secret
from superset_async_glue.commands import role_command
from superset_async_glue.loading import parse_settings
from test_settings import run_main

MARKER = "MARKER-s3cr3t-7f1d"  # stands for a secret pasted into the wrong place
PROBLEM_LINE = re.compile(r"^  - (settings|[A-Za-z_][\w.\[\]-]*): \S")
FUZZ_CASES = 3000


def _base(tmp: Path) -> dict[str, Any]:
    keys = tmp / "keys"
    keys.mkdir(exist_ok=True)
    return {
        "state_dir": str(tmp / "state"),
        "secret_key_file": str(write_secret(keys / "sk")),
        "global_async_queries": {"jwt_secret_file": str(write_secret(keys / "jwt"))},
        "redis": {"password_file": str(write_secret(keys / "redis"))},
    }


def _check_text(tmp: Path, text: str) -> tuple[int, str, str]:
    path = tmp / "settings.json"
    path.write_text(text)
    result = run_main("check", "--settings", str(path))
    return result.code, result.stdout, result.stderr


def _assert_refused_cleanly(code: int, stderr: str, where: str) -> None:
    assert code == 2, stderr
    lines = stderr.splitlines()
    assert "invalid setting(s); nothing was written" in lines[0]
    problems = [line for line in lines[1:] if line.startswith("  - ")]
    assert problems, stderr
    assert all(PROBLEM_LINE.match(line) for line in problems), stderr
    assert any(line.startswith(f"  - {where}") for line in problems), stderr
    assert "Traceback" not in stderr and MARKER not in stderr


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"celery": {"beat_schedule": {"x": {"task": "t", "crontab": {}, "kwargs": {"n": NaN}}}}}', "settings"),
        ('{"web": {"workers": Infinity}}', "settings"),
        ('{"web": {"workers": -Infinity}}', "settings"),
        ('{"celery": {"beat_schedule": {"x": {"task": "t", "crontab": {}, "kwargs": {"n": 1e400}}}}}', "settings"),
        ('{"web": {"port": ' + "9" * 5000 + "}}", "settings"),
        (
            '{"databases": [{"name": "x", "uri": "clickhousedb://u@h/d", "extra": ' + "[" * 40 + "]" * 40 + "}]}",
            "databases[0].extra",
        ),
        ('{"a": ' + "[" * 100000 + "]" * 100000 + "}", "settings"),
    ],
    ids=["nan-in-beat-kwargs", "infinity", "minus-infinity", "float-overflow", "5000-digits", "deep-extra", "deeper"],
)
def test_numbers_json_cannot_hold_and_deep_nesting_are_located_errors(text: str, where: str, tmp_path: Path) -> None:
    code, _, stderr = _check_text(tmp_path, text)
    _assert_refused_cleanly(code, stderr, where)


def test_a_nan_never_reaches_the_rendered_config(tmp_path: Path) -> None:
    # Before: kwargs rendered as a bare `nan`, and Superset's import of the config failed.
    data = _base(tmp_path)
    data["celery"] = {"beat_schedule": {"x": {"task": "reports.scheduler", "crontab": {}, "kwargs": {"n": "NAN"}}}}
    text = json.dumps(data).replace('"NAN"', "NaN")
    path = tmp_path / "s.json"
    path.write_text(text)
    result = run_main("render", "--settings", str(path), "--output", str(tmp_path / "c.py"))
    assert result.code == 2 and "NaN is not a finite number" in result.stderr
    assert not (tmp_path / "c.py").exists()


@pytest.mark.parametrize(
    "section", ["redis", "web", "global_async_queries", "admin", "metadata_db", "celery", "databases", "secret_files"]
)
@pytest.mark.parametrize("wrong", [MARKER, [MARKER], 7, {"password": MARKER}])
def test_a_wrongly_typed_section_is_named_and_never_echoed(section: str, wrong: Any, tmp_path: Path) -> None:
    data = {**_base(tmp_path), section: wrong}
    code, _, stderr = _check_text(tmp_path, json.dumps(data))
    _assert_refused_cleanly(code, stderr, section)


def test_the_redis_username_reproduction_cannot_rewrite_redis_conf(tmp_path: Path) -> None:
    data = _base(tmp_path)
    data["redis"]["username"] = "superset\nbind 0.0.0.0\nprotected-mode no"
    code, _, stderr = _check_text(tmp_path, json.dumps(data))
    _assert_refused_cleanly(code, stderr, "redis.username")


# -- fuzz ---------------------------------------------------------------------------------------------

_KEYS = {
    "": [
        "state_dir",
        "secret_key_file",
        "redis",
        "web",
        "celery",
        "sql_lab",
        "databases",
        "secret_files",
        "global_async_queries",
        "admin",
        "feature_flags",
        "worker",
        "beat",
        "metadata_db",
        "extra_config",
        "x",
    ],
    "redis": ["host", "port", "unix_socket", "username", "password_file", "password", "tls", "dbs"],
    "web": ["bind", "port", "workers", "public_url", "login_rate_limit", "limit_request_line", "timeout_seconds"],
    "celery": ["imports", "beat_schedule", "worker_prefetch_multiplier", "task_acks_late"],
    "sql_lab": ["timeout_seconds", "async_time_limit_seconds", "pending_timeout_seconds"],
    "admin": ["username", "email", "password_file", "password"],
    "global_async_queries": ["enabled", "jwt_secret_file", "jwt_secret", "polling_delay_ms"],
}
_STRINGS = [
    "",
    " ",
    "127.0.0.1",
    "x?ssl_cert_reqs=none#",
    "a\nb",
    "\x00",
    "/abs/path",
    "relative",
    "https://h.example/",
    "10 per minute",
    "*/0",
    "25",
    "superset.sql_lab",
    "é",
    "\u202e",
    "../..",
    "%00",
    "a" * 300,
    MARKER,
]


def _scalar(rng: random.Random) -> Any:
    kind = rng.randrange(8)
    if kind == 0:
        return rng.choice([0, -1, 1, 65536, 2**63, -(2**70), 10**300])
    if kind == 1:
        return rng.choice([0.5, -0.0, 1e308, 3.0])
    if kind == 2:
        return rng.choice([True, False, None])
    return rng.choice(_STRINGS)


def _value(rng: random.Random, depth: int, section: str = "") -> Any:
    kind = rng.randrange(10)
    if depth > 3 or kind < 5:
        return _scalar(rng)
    if kind < 7:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    keys = _KEYS.get(section, _KEYS[""] + ["SMTP_PASSWORD", "SECRET_KEY", "password", "//"])
    return {k: _value(rng, depth + 1, k) for k in rng.sample(keys, rng.randrange(1, min(4, len(keys)) + 1))}


def _mutate(base: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    data = json.loads(json.dumps(base))
    for _ in range(rng.randrange(1, 4)):
        section = rng.choice(_KEYS[""])
        if section in _KEYS and rng.random() < 0.7 and isinstance(data.get(section, {}), dict):
            inner = data.setdefault(section, {})
            inner[rng.choice(_KEYS[section])] = _value(rng, 1)
        else:
            data[section] = _value(rng, 0, section)
    return data


def test_fuzzed_settings_end_0_or_2_with_located_problems_and_never_echo_a_secret(tmp_path: Path) -> None:
    base = _base(tmp_path)
    # Rewriting a file on a busy disk costs milliseconds, all of this test's time: in memory when possible.
    shm = Path("/dev/shm")  # a private directory is made inside
    scratch = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path
    rng = random.Random(12)  # noqa: S311 - a reproducible test input generator, not cryptography
    outcomes = {0: 0, 2: 0}
    for case in range(FUZZ_CASES):
        data = _mutate(base, rng)
        text = json.dumps(data)
        if rng.random() < 0.05:  # now and then, JSON only a file can hold
            text = text.replace("0.5", rng.choice(["NaN", "Infinity", "1e999"]), 1)
        code, stdout, stderr = _check_text(scratch, text)
        context = f"case {case} (seed 12): {text[:300]}"
        assert code in outcomes, f"{context}\nexit {code}\n{stderr}"
        outcomes[code] += 1
        assert "Traceback" not in stderr, context
        assert MARKER not in stdout + stderr, f"{context}\n{stderr}"
        if code == 2:
            problems = [line for line in stderr.splitlines()[1:] if line.startswith("  - ")]
            assert problems and all(PROBLEM_LINE.match(line) for line in problems), f"{context}\n{stderr}"
    if scratch != tmp_path:
        shutil.rmtree(scratch)
    print(f"fuzzed check: {outcomes[0]} valid, {outcomes[2]} refused of {FUZZ_CASES}")
    assert outcomes[0] > 0 and outcomes[2] > FUZZ_CASES // 2


def test_gunicorn_keeps_its_request_limits_unless_raised_on_purpose(tmp_path: Path) -> None:
    # Before: --limit-request-line=0 --limit-request-field_size=0 (no limits) on every web.
    argv = role_command("web", parse_settings(json.dumps(_base(tmp_path))), tmp_path / "c.py", tmp_path).argv
    assert "--limit-request-line=4094" in argv and "--limit-request-field_size=8190" in argv
    raised = {**_base(tmp_path), "web": {"limit_request_line": 0, "limit_request_field_size": 16384}}
    argv = role_command("web", parse_settings(json.dumps(raised)), tmp_path / "c.py", tmp_path).argv
    assert "--limit-request-line=0" in argv and "--limit-request-field_size=16384" in argv
