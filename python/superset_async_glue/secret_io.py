"""Reading secret files at run time, with errors that name the setting and never the value."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from .errors import GlueError


class SecretFileError(GlueError):
    """A secret file named in the settings is missing, unreadable or empty."""


def secret_path(path: str, credential: str | None) -> str:
    """Where a secret can be read from: systemd's $CREDENTIALS_DIRECTORY/<credential> when the unit
    received it through LoadCredential= (the source file is then typically root-only), else `path`.

    Keep in step with `_credential_path` in the rendered config (render.py's prelude).
    """
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if credential and directory and (Path(directory) / credential).exists():
        return str(Path(directory) / credential)
    return path


def read_secret(setting: str, path: str, credential: str | None = None) -> str:
    """The secret in `path` (or in its systemd credential, see `secret_path`) without its trailing newline."""
    path = secret_path(path, credential)
    try:
        value = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as err:
        raise SecretFileError(f"{setting}: cannot read secret file {path}: {err.strerror}") from None
    if not value:
        raise SecretFileError(f"{setting}: secret file {path} is empty")
    return value


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only: a new file, created 0600, renamed over `path`.

    A symlink at `path` is replaced, never followed, and an existing file is never rewritten in
    place (its old mode, e.g. 0644, never applies to the new text).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # O_EXCL, mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_secret(path: Path, nbytes: int = 36) -> Path:
    """Generate a random secret into `path` (mode 0600) unless the file already holds one."""
    if not path.exists() or not path.read_text(encoding="utf-8").strip():
        write_private(path, secrets.token_urlsafe(nbytes) + "\n")
    return path
