"""The NixOS module's contract (nix/modules/superset-async/contract.json) is the one the models generate."""

from __future__ import annotations

import json
import re

from fixtures.common import REPO
from superset_async_glue.contract import REGENERATE, contract, render
from superset_async_glue.settings import Database, Redis, Settings, credential_slug, database_credential, secret_files

COMMITTED = REPO / "nix" / "modules" / "superset-async" / "contract.json"


def test_the_committed_contract_is_the_generated_one() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(), (
        f"{COMMITTED.relative_to(REPO)} is stale (the settings models changed): run {REGENERATE}"
    )


def test_every_credential_of_secret_files_is_named_by_the_contract() -> None:
    c = contract()
    settings = Settings.model_validate(
        {
            "secret_key_file": "/k/sk",
            "metadata_db": {"uri": "postgresql://u@h/d", "password_file": "/k/pg"},
            "redis": {"password_file": "/k/r", "tls": {"key_file": "/k/tls"}},
            "global_async_queries": {"jwt_secret_file": "/k/jwt"},
            "admin": {"password_file": "/k/admin"},
            "databases": [{"name": "Sales (EU)", "uri": "clickhousedb://u@h/d", "password_file": "/k/ch"}],
            "reports": {"smtp": {"user": "u", "password_file": "/k/smtp"}, "slack": {"token_file": "/k/slack"}},
            "secret_files": {"SMTP_HELO_SECRET": "/k/helo"},
        }
    )
    named = {name: rule["setting"] for name, rule in c["credentials"]["fixed"].items()}
    slug = credential_slug("Sales (EU)")
    named[c["credentials"]["database"]["template"].replace("{slug}", slug)] = "databases[0].password_file"
    named[c["credentials"]["secret_files"]["template"].replace("{key}", "smtp_helo_secret")] = (
        "secret_files.SMTP_HELO_SECRET"
    )
    # Sentinel excludes TLS: its credential comes from a second configuration.
    sentinel = settings.model_copy(
        update={
            "redis": settings.redis.model_validate(
                {
                    "password_file": "/k/r",
                    "sentinel": {"master_name": "m", "sentinels": ["h:1"], "password_file": "/k/sentinel"},
                }
            )
        }
    )
    found = {name: where for s in (settings, sentinel) for name, (where, _) in secret_files(s).items()}
    assert named == found
    # ... and every one of them is a key the module scans for store paths
    keys = set(c["secret_file_keys"])
    assert {re.sub(r"\[\d+\]", "[]", where).replace("SMTP_HELO_SECRET", "*") for where in named.values()} <= keys


def test_the_slug_rule_is_one_the_module_can_apply_and_its_examples_hold() -> None:
    slug = contract()["credentials"]["slug"]
    # Nix's builtins.split speaks POSIX ERE: keep the pattern a plain negated character class.
    assert re.fullmatch(r"\[\^[A-Za-z0-9-]+\]\+", slug["separators"]), slug["separators"]
    for name, expected in slug["examples"].items():
        assert credential_slug(name) == expected
        assert database_credential(Database(name=name, uri="clickhousedb://u@h/d")) == f"database_{expected}_password"


def test_defaults_and_ranges_come_from_the_models() -> None:
    c = contract()
    assert c["defaults"]["redis"]["port"] == Redis().port
    assert c["keys"]["web.port"] | {"description": ""} == {
        "type": "integer",
        "minimum": 1,
        "maximum": 65535,
        "description": "",
    }
    assert c["keys"]["worker.pool"]["enum"] == ["prefork", "threads", "solo"]
    assert c["required"] == ["secret_key_file"]
    json.dumps(c)  # plain JSON, as lib.importJSON reads it
