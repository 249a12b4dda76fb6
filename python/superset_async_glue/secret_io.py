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
    make_private_dirs(path.parent)
    # mkstemp creates the file exclusively (O_CREAT | O_EXCL: never through a symlink) with mode 0600,
    # before any byte of `text` exists in it; rename() then replaces `path` itself, never its target.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_private_dirs(directory: Path) -> None:
    """Create `directory` and its missing parents, each 0700 (mkdir's `mode` applies to the last one only)."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for each in reversed(missing):
        each.mkdir(mode=0o700, exist_ok=True)


def ensure_secret(path: Path, nbytes: int = 36) -> Path:
    """Generate a random secret into `path` (mode 0600) unless the file already holds one.

    A symlink at `path` counts as no secret: it is replaced, never read or written through.
    """
    if path.is_symlink() or not path.exists() or not path.read_text(encoding="utf-8").strip():
        write_private(path, secrets.token_urlsafe(nbytes) + "\n")
    return path
