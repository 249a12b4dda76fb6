"""Read settings JSON into the typed model; every problem becomes a SettingProblem naming field and fix."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import SettingProblem, SettingsError
from .settings import INLINE_SECRET_KEYS, LocatedValueError, Settings

# Values of these fields are never echoed: a user who pasted a secret into them must not see it in logs.
_SECRET_SUFFIXES = ("_file", "password", "secret", "secret_key")


def load_settings(path: Path) -> Settings:
    """Read and validate a settings file, or raise SettingsError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SettingsError(str(path), [SettingProblem("settings", f"cannot read the file: {err.strerror}")]) from err
    return parse_settings(text, str(path))


# Deeper JSON is no settings file: refused before anything recurses into it (render, digest).
MAX_DEPTH = 32


class _NotFiniteError(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotFiniteError(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400 reads as infinity
        raise _NotFiniteError(text)
    return value


def parse_settings(text: str, source: str = "settings") -> Settings:
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as err:
        problem = SettingProblem("settings", f"not valid JSON at line {err.lineno} column {err.colno}: {err.msg}")
        raise SettingsError(source, [problem]) from err
    except _NotFiniteError as err:
        problem = SettingProblem(
            "settings", f"{str(err)[:20]} is not a finite number; JSON has no NaN or Infinity: write a number"
        )
        raise SettingsError(source, [problem]) from None
    except ValueError:  # Python refuses integers of more than 4300 digits
        raise SettingsError(source, [SettingProblem("settings", "a number has too many digits")]) from None
    except RecursionError:
        raise SettingsError(source, [_too_deep("settings")]) from None
    if not isinstance(data, dict):
        raise SettingsError(source, [SettingProblem("settings", "expected a JSON object at the top level")])
    if (deep := _deeper_than(data, MAX_DEPTH)) is not None:
        raise SettingsError(source, [_too_deep(_location(deep))])
    data.pop("$schema", None)  # editors' schema hint; not a setting
    try:
        return Settings.model_validate(without_comments(data))
    except ValidationError as err:
        raise SettingsError(source, [_problem(e) for e in err.errors()]) from err


def _too_deep(location: str) -> SettingProblem:
    return SettingProblem(location, f"nested more than {MAX_DEPTH} levels deep; no setting needs that")


def _deeper_than(data: Any, limit: int) -> tuple[int | str, ...] | None:
    """The location of a value nested more than `limit` levels deep, or None (iterative: no recursion)."""
    stack: list[tuple[tuple[int | str, ...], Any]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        if len(loc) > limit:
            return loc[:limit]
        if isinstance(value, dict):
            stack.extend(((*loc, str(k)), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend(((*loc, i), v) for i, v in enumerate(value))
    return None


COMMENT_PREFIX = "//"


def without_comments(value: Any) -> Any:
    """`value` without the keys that start with "//" (JSON has no comments; a settings file may carry
    them as `"//": "why"` entries in any object, as the examples and `init-settings` do)."""
    if isinstance(value, dict):
        return {k: without_comments(v) for k, v in value.items() if not str(k).startswith(COMMENT_PREFIX)}
    if isinstance(value, list):
        return [without_comments(v) for v in value]
    return value


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(str(part)):
            out += f".{part}" if out else str(part)
        else:  # a key of the user's own: quoted, so that it cannot break the line or pass for another
            out += f"[{json.dumps(str(part)[:40])}]"
    return out or "settings"


def _is_secret_field(location: str) -> bool:
    last = location.rsplit(".", 1)[-1]
    return last.endswith(_SECRET_SUFFIXES)


def _problem(error: Any) -> SettingProblem:
    loc = tuple(error["loc"])
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, LocatedValueError):
        loc = (*loc, *cause.location.split("."))
    location = _location(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent, key = _model_at(loc[:-1]), str(loc[-1])
        file_key = INLINE_SECRET_KEYS.get(key)
        if parent is not None and file_key in parent.model_fields:
            return SettingProblem(
                location,
                f"secrets are never given inline; write it to a file readable only by the service "
                f"and set '{file_key}' to that file's absolute path",
            )
        known = "known keys here: " + ", ".join(sorted(parent.model_fields)) if parent else "see docs/settings.md"
        return SettingProblem(location, f"unknown key; {known}")
    if kind == "missing":
        return SettingProblem(location, "required but missing")
    message = str(cause) if cause is not None else error["msg"]
    message = message.removeprefix("Value error, ")
    if kind not in ("value_error", "assertion_error") and not _is_secret_field(location):
        found = error.get("input")
        # Only numbers, booleans and null are echoed: a string or a whole section given where
        # something else was expected may be a secret pasted into the wrong place.
        if found is None or isinstance(found, bool | int | float):
            message += f" (found {str(json.dumps(found))[:80]})"
        else:
            message += f" (found a JSON {_json_type(found)})"
    return SettingProblem(location, message)


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return "string" if isinstance(value, str) else type(value).__name__


def _model_at(path: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The settings model at a location (list indexes and dict keys of models are stepped over)."""
    model: type[BaseModel] | None = Settings
    for part in path:
        if model is None:
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            continue  # an index into a tuple, or a key of dict[str, Model]
        model = _model_of(field.annotation)
    return model


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found:
            return found
    return None


def canonical_json(settings: Settings) -> str:
    """The settings with every default filled in, keys sorted, no whitespace: equal meaning, equal text."""
    return json.dumps(settings.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def settings_digest(settings: Settings) -> str:
    return hashlib.sha256(canonical_json(settings).encode()).hexdigest()
