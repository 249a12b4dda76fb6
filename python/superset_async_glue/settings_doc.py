"""The settings reference (docs/settings-reference.md), generated from the models so it cannot drift."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .settings import Settings

HEADER = """# Settings reference

Generated from `python/superset_async_glue/settings.py` by `superset-async settings-doc`; do not edit
(a test fails when this file and the models differ). Guide: [settings.md](settings.md). Every key is
optional unless marked **required**; secrets are always paths of files (`*_file`).

| key | type | default | meaning |
|---|---|---|---|
"""


_GENERIC_NAMES: dict[Any, Any] = {
    types.UnionType: lambda args: " or ".join(_type_name(a) for a in args),
    typing.Union: lambda args: " or ".join(_type_name(a) for a in args),
    typing.Literal: lambda args: " / ".join(json.dumps(a) for a in args),
    tuple: lambda args: f"list of {_type_name(args[0])}",
    list: lambda args: f"list of {_type_name(args[0])}",
    dict: lambda args: f"map of {_type_name(args[1])}",
    typing.Annotated: lambda args: _type_name(args[0]),
}


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in _GENERIC_NAMES:
        name: str = _GENERIC_NAMES[origin](typing.get_args(annotation))
        return name
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.default if field.default is not PydanticUndefined else field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    if value == {} and field.default_factory is not None and typing.get_origin(field.annotation) is not dict:
        return "see below"
    if isinstance(value, dict) and value and isinstance(next(iter(value.values())), BaseModel):
        value = {k: v.model_dump(mode="json", exclude_defaults=True) for k, v in value.items()}
    return "`" + json.dumps(value, default=str).replace("|", "\\|") + "`"


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        nested = _nested_model(field.annotation)
        description = (field.description or (nested.__doc__ if nested else "") or "").split("\n")[0]
        description = description.replace("|", "\\|")
        rows.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
        if nested is not None:
            suffix = "[]." if typing.get_origin(field.annotation) is tuple else ("*." if _is_map(field) else ".")
            rows += _rows(nested, f"{key}{suffix}")
    return rows


def _is_map(field: FieldInfo) -> bool:
    return typing.get_origin(field.annotation) is dict


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _nested_model(arg)
        if found is not None:
            return found
    return None


def settings_reference() -> str:
    return HEADER + "\n".join(_rows(Settings, "")) + "\n"
