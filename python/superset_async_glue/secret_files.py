"""Checks on the secret files themselves (existence, emptiness, minimum length), never on their text."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SettingProblem, SettingsError
from .secret_io import secret_path
from .settings import Settings, redis_access_problem, secret_files

# Superset refuses a shorter GLOBAL_ASYNC_QUERIES_JWT_SECRET at start-up; SECRET_KEY signs sessions
# and encrypts stored database passwords, so it gets the same floor (the rendered config checks both).
MIN_SECRET_BYTES = 32
MIN_BYTES = {"gaq_jwt_secret": MIN_SECRET_BYTES, "secret_key": MIN_SECRET_BYTES}


def secret_file_problems(settings: Settings, *, missing_ok: bool) -> list[SettingProblem]:
    """Problems with the configured secret files.

    missing_ok: skip files this process cannot see (render at Nix build time has no secrets);
    files that are readable are always checked.
    """
    problems = []
    for credential, (where, path) in secret_files(settings).items():
        file = Path(secret_path(path, credential))  # a systemd unit sees its credential, not the source
        if not file.exists() or not os.access(file, os.R_OK):
            if not missing_ok:
                state = "does not exist" if not file.exists() else "is not readable by this user"
                problems.append(SettingProblem(where, f"{path} {state}; create it (mode 0600) or fix the path"))
            continue
        size = len(file.read_bytes().rstrip(b"\r\n"))
        if size == 0:
            problems.append(SettingProblem(where, f"{path} is empty; write the secret into it"))
        elif size < MIN_BYTES.get(credential, 1):
            problems.append(
                SettingProblem(
                    where,
                    f"{path} holds {size} bytes; at least {MIN_BYTES[credential]} are needed "
                    f"(e.g. openssl rand -base64 48 > {path})",
                )
            )
    return problems


def require_valid_secret_files(settings: Settings, source: str, *, missing_ok: bool) -> None:
    problems = secret_file_problems(settings, missing_ok=missing_ok)
    if problems:
        raise SettingsError(source, problems)


def require_deployable(settings: Settings, source: str, *, missing_ok: bool) -> None:
    """What `check` and `up` require beyond `render`: the secret files, and Redis access control.

    `render` runs in a Nix build, where the NixOS module's own assertions stand for the second.
    """
    problems = secret_file_problems(settings, missing_ok=missing_ok)
    if (redis := redis_access_problem(settings)) is not None:
        problems.append(SettingProblem(*redis))
    if problems:
        raise SettingsError(source, problems)
