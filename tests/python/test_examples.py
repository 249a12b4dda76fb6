"""Starting points a user copies: examples/settings/*.json, `init-settings`, and one of them run for real.

The NixOS examples and the flake template are evaluated by tests/nix/cases/examples.nix; here their
final settings also pass the glue's own validation, and the module names every credential as the glue does.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import redis
from fixtures.common import REPO, free_port, run_cli
from fixtures.stack import require_servers
from superset_async_glue.loading import parse_settings
from superset_async_glue.profiles import PROFILES, starting_settings
from superset_async_glue.settings import secret_files
from superset_async_glue.verify.client import SupersetClient

EXAMPLES = REPO / "examples" / "settings"
NIX_CONFIG = "experimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false\nsubstituters ="
NIXOS_EXAMPLES = ("single-host", "production", "scale-out-web", "scale-out-worker")
# Each NixOS example evaluated with the offline stubs (tests/nix): what the glue would receive, and
# the LoadCredential= of every unit.
NIXOS_EVAL = """
let
  h = import ./tests/nix/eval.nix { };
  pkg = h.pkgs.writeShellScriptBin "superset-async" "exit 0";
  pkgs = h.pkgs // { superset-async = pkg; postgresql = pkg; chromium = pkg; chromedriver = pkg;
                     dejavu_fonts = pkg; };
  # production.nix sets fonts.packages (the screenshots' fonts), which the stubs lack.
  fonts = { lib, ... }: {
    options.fonts.packages = lib.mkOption { type = lib.types.listOf lib.types.package; default = [ ]; };
  };
  eval = name: (h.evalConfig {
    inherit pkgs;
    modules = [ ./nix/modules/superset-async ./tests/nix/stubs/test-nodes.nix fonts (./examples/nixos + "/${name}.nix")
                { services.superset-async.package = pkg; } ];
  }).config;
in
builtins.listToAttrs (map (name: let c = eval name; in {
  inherit name;
  value = {
    settings = c.services.superset-async.finalSettings;
    units = builtins.mapAttrs (_: u: u.serviceConfig.LoadCredential)
      (builtins.intersectAttrs (builtins.listToAttrs (map (r: { name = "superset-async-${r}"; value = null; })
        [ "init" "web" "worker" "beat" ])) c.systemd.services);
  };
}) NAMES)
"""


@pytest.mark.parametrize("profile", PROFILES)
def test_example_settings_are_the_profiles_and_check_and_render(profile: str, tmp_path: Path) -> None:
    path = EXAMPLES / f"{profile}.json"
    expected = starting_settings(profile, "/run/keys/superset-async", "/var/lib/superset-async")  # type: ignore[arg-type]
    assert json.loads(path.read_text()) == expected, (
        f"{path} is stale: regenerate it from superset_async_glue/profiles.py (see docs/getting-started.md)"
    )
    checked = run_cli("check", "--skip-secret-files", "--settings", str(path))
    assert checked.code == 0, checked.stderr
    rendered = run_cli("render", "--settings", str(path), "--output", str(tmp_path / "superset_config.py"))
    assert rendered.code == 0, rendered.stderr
    config = (tmp_path / "superset_config.py").read_text()
    assert "CELERY_CONFIG" in config
    if profile == "production":  # behind the TLS proxy, with reports (docs/production.md)
        for line in (
            "SESSION_COOKIE_SECURE = True",
            "ENABLE_PROXY_FIX = True",
            "GLOBAL_ASYNC_QUERIES_JWT_COOKIE_SECURE = True",
        ):
            assert line in config, line
        assert "FEATURE_FLAGS['ALERT_REPORTS'] = True" in config


def test_comment_keys_are_ignored_anywhere_but_a_misspelled_key_is_still_an_error() -> None:
    data = starting_settings("single", "/run/keys/x", "/var/lib/x")
    assert "//" in data and "//" in data["databases"][0]
    settings = parse_settings(json.dumps(data))
    assert settings.databases[0].name == "ClickHouse"
    data["redis"]["prot"] = 1
    with pytest.raises(Exception, match=r"redis\.prot"):
        parse_settings(json.dumps(data))


def test_init_settings_writes_a_valid_file_and_private_secrets_and_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "site" / "superset-async.json"
    (tmp_path / "site" / "secrets").mkdir(parents=True)
    kept = tmp_path / "site" / "secrets" / "admin_password"
    kept.write_text("chosen-by-me\n")
    made = run_cli("init-settings", "--profile", "production", "--output", str(out))
    assert made.code == 0, made.stderr
    assert f"wrote {out} (profile production)" in made.stdout
    assert f"admin.password_file: {kept} (exists, kept)" in made.stdout
    assert kept.read_text() == "chosen-by-me\n"
    secrets_dir = out.parent / "secrets"
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    for name in (
        "secret_key",
        "gaq_jwt_secret",
        "redis_password",
        "metadata_db_password",
        "clickhouse_password",
        "smtp_password",
    ):
        secret = secrets_dir / name
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, name
        assert len(secret.read_text().strip()) >= 32, name
        assert secret.read_text().strip() not in made.stdout + made.stderr
    placeholder = secrets_dir / "smtp_password"
    assert f"{placeholder} holds a random placeholder: write your mail account's password there" in made.stdout
    assert run_cli("check", "--settings", str(out)).code == 0
    before = out.read_bytes()
    again = run_cli("init-settings", "--output", str(out))
    assert again.code == 2
    assert f"{out} exists; init-settings never overwrites a file" in again.stderr
    assert out.read_bytes() == before


def test_the_single_host_starting_settings_run_a_real_stack(tmp_path: Path) -> None:
    """What a user does first: init-settings, then up; an async query runs on the worker.

    The profile puts broker, results and caches on Redis's unix socket (as the NixOS module does by
    default; GAQ keeps TCP): the socket is private, and the worker reaches the broker through it.
    """
    require_servers()
    out = tmp_path / "superset-async.json"
    assert run_cli("init-settings", "--output", str(out)).code == 0
    data = json.loads(out.read_text())  # only the ports move (the defaults may be taken on this machine)
    data["web"]["port"], data["redis"]["port"] = free_port(), free_port()
    data["databases"][0]["uri"] = f"clickhousedb://superset@127.0.0.1:{free_port()}/default"
    out.write_text(json.dumps(data, indent=2))
    up = run_cli("up", "--detach", "--settings", str(out), "--clickhouse-spare-port", str(free_port()), timeout=600)
    try:
        assert up.code == 0, up.stdout[-3000:] + up.stderr[-3000:]
        password = Path(data["admin"]["password_file"]).read_text().strip()
        client = SupersetClient(f"http://127.0.0.1:{data['web']['port']}/", "admin", password)
        outcome = client.run_async(client.database_id("ClickHouse"), "SELECT 41 + 1 AS answer")
        assert outcome.state == "success", outcome.error
        assert outcome.rows == [[42]]
        socket_path = Path(data["redis"]["unix_socket"])
        assert socket_path.is_socket()
        assert socket_path.stat().st_mode & 0o777 == 0o700  # only the stack's own user reaches Redis
        config = Path(data["state_dir"]) / "superset_config.py"
        assert "redis+socket://" in config.read_text()
        stack = json.loads((Path(data["state_dir"]) / "run" / "stack.json").read_text())
        worker_env = Path(f"/proc/{stack['processes']['worker']['pid']}/environ").read_bytes()
        assert b"SUPERSET_CONFIG_PATH=" + str(config).encode() in worker_env
        redis_password = Path(data["redis"]["password_file"]).read_text().strip()
        assert redis.Redis(unix_socket_path=str(socket_path), password=redis_password, db=0).ping()
    finally:
        down = run_cli("down", "--state-dir", data["state_dir"])
        assert down.code == 0, down.stdout + down.stderr


def test_nixos_examples_give_the_glue_valid_settings_and_name_credentials_as_it_does() -> None:
    """The glue validates the module's settings only at build time, which the offline tests cannot run."""
    names = "[ " + " ".join(f'"{n}"' for n in NIXOS_EXAMPLES) + " ]"
    evaluated = subprocess.run(
        [
            "nix-instantiate",
            "--eval",
            "--strict",
            "--json",
            "--readonly-mode",
            "-E",
            NIXOS_EVAL.replace("NAMES", names),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "NIX_CONFIG": NIX_CONFIG},
        timeout=120,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    for name, example in json.loads(evaluated.stdout).items():
        settings = parse_settings(json.dumps(example["settings"]))
        expected = {f"{credential}:{path}" for credential, (_, path) in secret_files(settings).items()}
        assert example["units"], name
        for unit, credentials in example["units"].items():
            assert set(credentials) == expected, f"{name}: {unit}"
