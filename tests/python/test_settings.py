"""Bad settings are refused by `check` and `render` with exit 2, the field, the fix, and nothing written."""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from fixtures.common import DELETE, REPO, CliResult, SettingsFactory, run_cli, write_secret
from superset_async_glue.cli import main


def run_main(*args: str) -> CliResult:
    """`superset-async <args>` through its entry point, in this process (milliseconds, not a second);
    any exception other than the exit it ends with escapes, with its traceback, and fails the test."""
    out, err, argv = io.StringIO(), io.StringIO(), sys.argv
    sys.argv = ["superset-async", *args]
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = argv
    return CliResult(code, out.getvalue(), err.getvalue())


# (case id, overrides of a valid base, location that must be named, text the message must contain)
INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "jwt-secret-short",
        {"global_async_queries": {"jwt_secret_file": "@short:jwt"}},
        "global_async_queries.jwt_secret_file",
        "at least 32",
    ),
    ("two-roles-one-db", {"redis": {"dbs": {"cache": 1}}}, "redis.dbs.cache", "share Redis DB 1"),
    ("inline-secret-key", {"secret_key": "hunter2hunter2"}, "secret_key", "never given inline"),
    ("inline-admin-password", {"admin": {"password": "pw"}}, "admin.password", "set 'password_file'"),
    ("inline-redis-password", {"redis": {"password": "pw"}}, "redis.password", "never given inline"),
    (
        "inline-jwt-secret",
        {"global_async_queries": {"jwt_secret": "x" * 40}},
        "global_async_queries.jwt_secret",
        "jwt_secret_file",
    ),
    (
        "inline-database-password",
        {"databases": [{"name": "ch", "uri": "clickhousedb://u@h:8123/d", "password": "pw"}]},
        "databases[0].password",
        "never given inline",
    ),
    ("timeout-zero", {"sql_lab": {"timeout_seconds": 0}}, "sql_lab.timeout_seconds", "greater than 0"),
    ("unknown-top-level-key", {"colour": "blue"}, "colour", "unknown key; known keys here:"),
    ("unknown-nested-key", {"redis": {"hostname": "x"}}, "redis.hostname", "known keys here: dbs, host"),
    (
        "database-uri-with-password",
        {"databases": [{"name": "ch", "uri": "clickhousedb://u:secret@h:8123/d"}]},
        "databases[0].uri",
        "carries a password",
    ),
    (
        "metadata-uri-with-password",
        {"metadata_db": {"uri": "postgresql://su:pw@db/superset"}},
        "metadata_db.uri",
        "set password_file",
    ),
    (
        "time-limit-below-timeout",
        {"sql_lab": {"timeout_seconds": 300, "async_time_limit_seconds": 60}},
        "sql_lab.async_time_limit_seconds",
        "shorter than timeout_seconds",
    ),
    ("web-timeout-below-sqllab", {"web": {"timeout_seconds": 60}}, "web.timeout_seconds", "gunicorn would kill"),
    ("missing-secret-key-file", {"secret_key_file": DELETE}, "secret_key_file", "required but missing"),
    ("relative-secret-path", {"secret_key_file": "keys/secret"}, "secret_key_file", "absolute path"),
    (
        "gaq-without-jwt-file",
        {"global_async_queries": {"jwt_secret_file": DELETE}},
        "global_async_queries.jwt_secret_file",
        "required while enabled",
    ),
    ("redis-port-range", {"redis": {"port": 70000}}, "redis.port", "less than or equal to 65535"),
    ("redis-db-range", {"redis": {"dbs": {"broker": 16}}}, "redis.dbs.broker", "less than or equal to 15"),
    ("threads-pool", {"worker": {"pool": "threads"}}, "worker.pool", "does not enforce Celery time limits"),
    ("zero-concurrency", {"worker": {"concurrency": 0}}, "worker.concurrency", "greater than or equal to 1"),
    (
        "owned-feature-flag",
        {"feature_flags": {"GLOBAL_ASYNC_QUERIES": False}},
        "feature_flags.GLOBAL_ASYNC_QUERIES",
        "set global_async_queries.enabled",
    ),
    (
        "duplicate-database-names",
        {"databases": [{"name": "ch", "uri": "clickhousedb://u@h/d"}, {"name": "ch", "uri": "clickhousedb://u@g/d"}]},
        "databases",
        "must be unique",
    ),
    (
        "imports-without-sql-lab",
        {"celery": {"imports": ["superset.tasks.cache"]}},
        "celery.imports",
        "superset.sql_lab",
    ),
    ("sqlite-with-password", {"metadata_db": {"password_file": "/run/keys/pg"}}, "metadata_db.password_file", "SQLite"),
    ("redis-host-is-url", {"redis": {"host": "redis://cache:6379"}}, "redis.host", "bare host"),
    (
        "database-name-chars",
        {"databases": [{"name": "ClickHouse\nprod", "uri": "clickhousedb://u@h/d"}]},
        "databases[0].name",
        "printable characters",
    ),
    ("secret-file-empty", {"secret_key_file": "@empty:sk"}, "secret_key_file", "is empty"),
    ("relative-state-dir", {"state_dir": "state"}, "state_dir", "absolute path"),
    (
        "websocket-transport",
        {"global_async_queries": {"transport": "ws"}},
        "global_async_queries.transport",
        "'polling'",
    ),
    ("admin-email", {"admin": {"email": "nobody"}}, "admin.email", "pattern"),
    (
        "beat-entry-without-task",
        {"celery": {"beat_schedule": {"x": {"crontab": {}}}}},
        "celery.beat_schedule.x.task",
        "required but missing",
    ),
    ("workers-not-a-number", {"web": {"workers": "two"}}, "web.workers", "valid integer"),
    (
        "prefetch-negative",
        {"celery": {"worker_prefetch_multiplier": -1}},
        "celery.worker_prefetch_multiplier",
        "use 1 (the default) or more",
    ),
    (
        "prefetch-zero-is-unlimited",
        {"celery": {"worker_prefetch_multiplier": 0}},
        "celery.worker_prefetch_multiplier",
        "0 is below 1: Celery reads 0 as unlimited",
    ),
    ("running-grace-too-short", {"sql_lab": {"running_grace_seconds": 4}}, "sql_lab.running_grace_seconds", "5"),
    # Values written into redis.conf, URLs, XML or argv: nothing that ends a line, a token or a URL part.
    (
        "redis-username-newline",
        {"redis": {"username": "superset\nbind 0.0.0.0\nprotected-mode no"}},
        "redis.username",
        "expected 1-128 letters, digits",
    ),
    ("redis-host-url-delimiters", {"redis": {"host": "x?ssl_cert_reqs=none#"}}, "redis.host", "? # / @"),
    ("redis-host-with-path", {"redis": {"host": "cache/0"}}, "redis.host", "bare host name"),
    ("redis-socket-newline", {"redis": {"unix_socket": "/run/r.sock\nport 0"}}, "redis.unix_socket", "control"),
    ("redis-socket-too-long", {"redis": {"unix_socket": "/" + "s" * 120}}, "redis.unix_socket", "107 bytes"),
    ("state-dir-question-mark", {"state_dir": "/srv/a?mode=ro"}, "state_dir", "SQLite URI"),
    ("secret-path-tab", {"secret_key_file": "/run/keys/a\tb"}, "secret_key_file", "no control characters"),
    (
        "password-in-database-extra",
        {
            "databases": [
                {
                    "name": "c",
                    "uri": "clickhousedb://u@h/d",
                    "extra": {"engine_params": {"connect_args": {"password": "x"}}},
                }
            ]
        },
        "databases[0].extra.engine_params.connect_args.password",
        "looks like a secret given inline",
    ),
    ("uri-bad-port", {"databases": [{"name": "c", "uri": "clickhousedb://u@h:80x/d"}]}, "databases[0].uri", "port"),
    ("uri-with-newline", {"metadata_db": {"uri": "postgresql://u@db/x\ny"}}, "metadata_db.uri", "whitespace"),
    ("queue-with-comma", {"worker": {"queues": ["a,b"]}}, "worker.queues[0]", "letters, digits"),
    ("web-bind-url", {"web": {"bind": "http://0.0.0.0"}}, "web.bind", "bare host name"),
    ("admin-name-newline", {"admin": {"username": "ad\nmin"}}, "admin.username", "control character"),
    (
        "celery-import-not-a-module",
        {"celery": {"imports": ["superset.sql_lab", "x; y"]}},
        "celery.imports[1]",
        "dotted",
    ),
    # Built with Celery's parser during validation, not at Superset's start.
    (
        "crontab-hour-25",
        {"celery": {"beat_schedule": {"x": {"task": "reports.scheduler", "crontab": {"hour": "25"}}}}},
        "celery.beat_schedule.x.crontab.hour",
        "Celery refuses '25'",
    ),
    (
        "crontab-garbage",
        {"celery": {"beat_schedule": {"x": {"task": "t", "crontab": {"minute": "*/0"}}}}},
        "celery.beat_schedule.x.crontab.minute",
        "Celery refuses",
    ),
    ("secret-key-short", {"secret_key_file": "@short:sk"}, "secret_key_file", "at least 32"),
    ("public-url-http", {"web": {"public_url": "http://superset.example.org/"}}, "web.public_url", "https://"),
    (
        "public-url-credentials",
        {"web": {"public_url": "https://u:p@superset.example.org/"}},
        "web.public_url",
        "no credentials",
    ),
    ("login-rate-limit", {"web": {"login_rate_limit": "lots"}}, "web.login_rate_limit", "10 per minute"),
    ("request-line-above-max", {"web": {"limit_request_line": 9000}}, "web.limit_request_line", "8190"),
    ("secret-files-key", {"secret_files": {"smtp_password": "/run/keys/smtp"}}, "secret_files.smtp_password", "upper"),
    (
        "secret-files-managed-key",
        {"secret_files": {"SECRET_KEY": "/run/keys/sk"}},
        "secret_files.SECRET_KEY",
        "set secret_key_file instead",
    ),
    ("secret-files-relative", {"secret_files": {"SMTP_PASSWORD": "smtp"}}, "secret_files.SMTP_PASSWORD", "absolute"),
]


def _materialise(value: Any, tmp: Path) -> Any:
    """'@short:name' / '@empty:name' become real secret files with that content."""
    if isinstance(value, dict):
        return {k: _materialise(v, tmp) for k, v in value.items()}
    if isinstance(value, list):
        return [_materialise(v, tmp) for v in value]
    if isinstance(value, str) and value.startswith(("@short:", "@empty:")):
        kind, name = value[1:].split(":")
        return str(write_secret(tmp / name, "x" * 12 if kind == "short" else ""))
    return value


@pytest.mark.parametrize(("overrides", "location", "text"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_setting_is_refused(
    make_settings: SettingsFactory, tmp_path: Path, overrides: dict[str, Any], location: str, text: str
) -> None:
    settings = make_settings(_materialise(overrides, tmp_path))
    output = tmp_path / "superset_config.py"
    output.write_text("previous render\n")

    checked = run_main("check", "--settings", str(settings))
    rendered = run_main("render", "--settings", str(settings), "--output", str(output))

    for result in (checked, rendered):
        assert result.code == 2, result
        problem_lines = [line for line in result.stderr.splitlines() if line.startswith(f"  - {location}: ")]
        assert problem_lines, f"no problem named {location!r} in:\n{result.stderr}"
        assert any(text in line for line in problem_lines), result.stderr
        assert "nothing was written" in result.stderr
    assert output.read_text() == "previous render\n"


def _redis_password(tmp_path: Path) -> dict[str, Any]:
    return {"redis": {"password_file": str(write_secret(tmp_path / "redis_password"))}}


def test_missing_secret_file_fails_check_but_not_render(make_settings: SettingsFactory, tmp_path: Path) -> None:
    # render runs where secrets do not exist (a Nix build); check runs on the host that has them
    settings = make_settings({"secret_key_file": "/nonexistent/superset-secret", **_redis_password(tmp_path)})
    checked = run_cli("check", "--settings", str(settings))
    assert checked.code == 2
    assert "  - secret_key_file: /nonexistent/superset-secret does not exist" in checked.stderr
    assert run_cli("check", "--skip-secret-files", "--settings", str(settings)).code == 0
    assert run_cli("render", "--settings", str(settings), "--output", str(tmp_path / "c.py")).code == 0


def test_at_least_25_invalid_cases() -> None:
    assert len({c[0] for c in INVALID}) >= 25


def test_secret_values_are_never_echoed(make_settings: SettingsFactory) -> None:
    settings = make_settings({"redis": {"password_file": "hunter2-not-a-path"}, "admin": {"password": "hunter3"}})
    result = run_cli("check", "--settings", str(settings))
    assert result.code == 2
    assert "redis.password_file" in result.stderr
    assert "hunter2" not in result.stderr and "hunter3" not in result.stderr


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{\n  "state_dir": "/x",\n  oops\n}')
    result = run_cli("check", "--settings", str(path))
    assert result.code == 2
    assert "line 3 column 3" in result.stderr


def test_every_problem_is_reported_at_once(make_settings: SettingsFactory) -> None:
    settings = make_settings({"sql_lab": {"timeout_seconds": 0}, "redis": {"port": 0}, "colour": 1})
    result = run_cli("check", "--settings", str(settings))
    assert "3 invalid setting(s)" in result.stderr


def test_valid_settings_pass_check(make_settings: SettingsFactory, tmp_path: Path) -> None:
    result = run_cli("check", "--settings", str(make_settings(_redis_password(tmp_path))))
    assert result.code == 0, result
    assert "valid (sha256 " in result.stdout


def test_check_requires_a_redis_password_unless_only_a_unix_socket_reaches_it(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    # Redis holds pickles that Superset loads: write access to it is code execution as Superset.
    result = run_cli("check", "--settings", str(make_settings()))
    assert result.code == 2
    assert "  - redis.password_file: required: Redis holds pickles" in result.stderr
    assert "set redis.password_file" in result.stderr
    # GAQ always speaks TCP, so a socket alone is enough only with GAQ off.
    socket_only = {"redis": {"unix_socket": "/run/sa/redis.sock"}}
    assert run_cli("check", "--settings", str(make_settings(socket_only, name="gaq.json"))).code == 2
    socket_only["global_async_queries"] = {"enabled": False}
    assert run_cli("check", "--settings", str(make_settings(socket_only, name="sock.json"))).code == 0


def test_schema_is_json_schema_of_all_sections() -> None:
    result = run_cli("schema")
    schema = json.loads(result.stdout)
    assert result.code == 0
    assert {"redis", "sql_lab", "global_async_queries", "databases", "celery"} <= set(schema["properties"])
    assert schema["required"] == ["secret_key_file"]


def test_settings_reference_doc_is_generated_from_the_models() -> None:
    result = run_cli("settings-doc")
    assert result.code == 0
    assert result.stdout == (REPO / "docs" / "settings-reference.md").read_text(), (
        "docs/settings-reference.md is stale: run .venv/bin/superset-async settings-doc -o docs/settings-reference.md"
    )


def test_write_private_replaces_a_symlink_and_never_rewrites_a_readable_file_in_place(tmp_path: Path) -> None:
    from superset_async_glue.secret_io import write_private  # noqa: PLC0415

    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not yours\n")
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    write_private(link, "secret\n")
    assert elsewhere.read_text() == "not yours\n"  # the link was not followed
    assert not link.is_symlink() and link.read_text() == "secret\n"
    assert link.stat().st_mode & 0o777 == 0o600

    open_file = tmp_path / "was-0644"
    open_file.write_text("old\n")
    open_file.chmod(0o644)
    before = open_file.stat().st_ino
    write_private(open_file, "secret\n")
    assert open_file.stat().st_ino != before  # a new 0600 file, not the old one rewritten
    assert open_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
