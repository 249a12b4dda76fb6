"""The settings' contract with the NixOS module, generated from the models (never typed by hand).

The module (nix/modules/superset-async/) reads the committed output with `lib.importJSON`: the
defaults it builds on, the ranges and enums of its typed options, which keys hold secret files, and
the credential names every secret gets under $CREDENTIALS_DIRECTORY. A test fails when the
committed file is stale. Regenerate with:

    .venv/bin/python -m superset_async_glue.contract -o nix/modules/superset-async/contract.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticUndefined

from . import settings as settings_module
from .settings import CREDENTIAL_SLUG_SEPARATORS, Settings, credential_slug, database_credential, secret_files

REGENERATE = ".venv/bin/python -m superset_async_glue.contract -o nix/modules/superset-async/contract.json"
# JSON-schema keywords the module turns into option types.
CONSTRAINTS: tuple[str, ...] = ("type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
CONSTRAINTS += ("minLength", "maxLength", "pattern")
# The agreed credential rule of settings.secret_files (issue 12) while the glue does not have the key yet;
# once it does, the rule is read off secret_files() like every other credential name.
SECRET_FILES_RULE = {"key_pattern": "^[A-Z][A-Z0-9_]*$", "template": "secret_file_{key}"}
PROBE_DB = "Probe: DB 1"
PROBE_KEY = "PROBE_KEY"


def _defaults(model: type[BaseModel]) -> dict[str, Any]:
    """Every default of `model`, nested sections included; required keys have none."""
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.is_required():
            continue
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            found[name] = _defaults(field.annotation)
            continue
        value = (
            field.default if field.default is not PydanticUndefined else field.get_default(call_default_factory=True)
        )
        adapter: TypeAdapter[Any] = TypeAdapter(field.annotation if field.annotation is not None else Any)
        found[name] = adapter.dump_python(value, mode="json")
    return found


def _item_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The defaults of the items of every list of sections (e.g. each of `databases`)."""
    found = {}
    for name, field in model.model_fields.items():
        args = [a for a in typing.get_args(field.annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if typing.get_origin(field.annotation) is tuple and args:
            found[name] = _defaults(args[0])
    return found


def _keys(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Dotted key -> its constraints, for every leaf of the settings ("[]" a list item, "*" a map value)."""
    defs = schema.get("$defs", {})
    keys: dict[str, dict[str, Any]] = {}

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        return resolve(defs[ref.rsplit("/", 1)[1]]) if ref else node

    def walk(node: dict[str, Any], key: str, nullable: bool = False) -> None:
        node = resolve(node)
        branches = [resolve(b) for b in node.get("anyOf", [])]
        if branches:
            rest = [b for b in branches if b.get("type") != "null"]
            if len(rest) == 1:
                walk({**rest[0], "description": node.get("description")}, key, nullable=len(rest) < len(branches))
                return
        if "properties" in node:
            for name, child in node["properties"].items():
                walk(child, f"{key}.{name}" if key else name)
            return
        item = node.get("items")
        if isinstance(item, dict) and "properties" in resolve(item):
            walk(item, f"{key}[]")
            return
        values = node.get("additionalProperties")
        if isinstance(values, dict) and ("properties" in resolve(values) or resolve(values).get("secret_file")):
            walk(values, f"{key}.*")
            return
        entry = {k: node[k] for k in CONSTRAINTS if k in node}
        if node.get("type") == "array" and isinstance(item, dict):
            entry["items"] = {k: item[k] for k in CONSTRAINTS if k in item}
        if nullable:
            entry["nullable"] = True
        if node.get("secret_file"):
            entry["secret_file"] = True
        if node.get("description"):
            entry["description"] = node["description"]
        keys[key] = entry

    walk(schema, "")
    return keys


def _with(model: BaseModel, dotted: str, value: Any) -> Any:
    """`model` with the value at a dotted key replaced (no validation: a probe, never a configuration)."""
    head, _, rest = dotted.partition(".")
    if head.endswith("[]"):
        name = head[:-2]
        items = getattr(model, name)
        return model.model_copy(update={name: (_with(items[0], rest, value), *items[1:])})
    return model.model_copy(update={head: _with(getattr(model, head), rest, value) if rest else value})


def _probe(keys: dict[str, dict[str, Any]], **overrides: Any) -> Settings:
    """Settings with every secret-file key set to a path naming that key, and one database.

    Validated only as far as a minimal configuration; the secrets are then set without validation,
    so that the glue's cross-checks (a password needs its user ...) need not be known here.
    """
    probe = Settings.model_validate(
        {
            "secret_key_file": "/probe/secret_key_file",
            "global_async_queries": {"jwt_secret_file": "/probe/global_async_queries.jwt_secret_file"},
            "redis": {
                "password_file": "/probe/redis.password_file",
                # Optional sections holding a secret file must exist in the probe to be probed.
                "sentinel": {"master_name": "probe", "sentinels": ["probe:1"]},
                "dbs": {"broker": 5, "async_events": 0},  # Sentinel's GAQ stream is on DB 0 (settings.py)
            },
            "databases": [{"name": PROBE_DB, "uri": "probe://u@h/d"}],
        }
    )
    for key, entry in keys.items():
        if entry.get("secret_file") and "*" not in key:
            probe = _with(probe, key, f"/probe/{key}")
    if "secret_files" in Settings.model_fields:
        probe = _with(probe, "secret_files", {PROBE_KEY: "/probe/secret_files"})
    for dotted, value in overrides.items():
        probe = _with(probe, dotted, value)
    return probe


def _credentials(keys: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Credential names as secret_files() gives them, and the switches that drop one."""
    probe = _probe(keys)
    db_name = database_credential(probe.databases[0])
    found = secret_files(probe)
    fixed: dict[str, dict[str, Any]] = {
        name: {"setting": where}
        for name, (where, path) in found.items()
        if path.startswith("/probe/") and "[" not in where and not where.startswith("secret_files")
    }
    # A credential that disappears when a switch (a boolean that defaults to true) is off needs it on.
    for key, entry in keys.items():
        if entry.get("type") != "boolean" or "[]" in key or "*" in key or _default_of(key) is not True:
            continue
        without = secret_files(_probe(keys, **{key: False}))
        for name in fixed.keys() - without.keys():
            fixed[name]["only_if"] = key
    slug = credential_slug(PROBE_DB)
    rule = dict(SECRET_FILES_RULE)
    key_pattern = getattr(settings_module, "SECRET_FILE_KEY", None)  # the glue's own check, once it has one
    if isinstance(key_pattern, re.Pattern):
        rule["key_pattern"] = key_pattern.pattern
    if "secret_files" in Settings.model_fields:
        derived = next(name for name, (where, _) in found.items() if where.startswith("secret_files"))
        rule["template"] = derived.replace(PROBE_KEY.lower(), "{key}")
    examples = ["ClickHouse", "ClickHouse (demo)", "-Sales / EU-2-", "Ünïcode db", "a__b--c"]
    return {
        "fixed": dict(sorted(fixed.items())),
        "database": {"template": db_name.replace(slug, "{slug}"), "setting": "password_file"},
        "slug": {
            "separators": CREDENTIAL_SLUG_SEPARATORS,
            "rule": "runs of separators become '_', leading and trailing '_' dropped, lower case",
            "examples": {name: credential_slug(name) for name in examples},
        },
        "secret_files": rule,
    }


def _default_of(key: str) -> Any:
    node: Any = _defaults(Settings)
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def contract() -> dict[str, Any]:
    keys = _keys(Settings.model_json_schema())
    secret_keys = sorted(k for k, e in keys.items() if e.get("secret_file"))
    if "secret_files" not in Settings.model_fields:
        secret_keys.append("secret_files.*")
    return {
        "_": f"Generated from python/superset_async_glue/settings.py; do not edit. Regenerate: {REGENERATE}",
        "defaults": _defaults(Settings),
        "item_defaults": _item_defaults(Settings),
        "required": sorted(k for k in keys if "[]" not in k and _is_required(k)),
        "keys": keys,
        "secret_file_keys": secret_keys,
        "credentials": _credentials(keys),
    }


def _is_required(key: str) -> bool:
    model: type[BaseModel] = Settings
    *parents, leaf = key.split(".")
    for part in parents:
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    field = model.model_fields.get(leaf)
    return field is not None and field.is_required()


def render() -> str:
    return json.dumps(contract(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--output", type=Path, help="write here instead of standard output")
    args = ap.parse_args(argv)
    text = render()
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
