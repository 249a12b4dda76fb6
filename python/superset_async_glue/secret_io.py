"""Reading secret files at run time, with errors that name the setting and never the value."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from . import secret_file_reader
from .errors import GlueError


class SecretFileError(GlueError):
    """A secret file named in the settings is missing, unreadable or empty."""


# The rule itself lives in secret_file_reader.py, which rendered files carry verbatim.
secret_path = secret_file_reader.secret_path


def read_secret(setting: str, path: str, credential: str | None = None) -> str:
    """The secret in `path` (or in its systemd credential) without its trailing newline."""
    try:
        return secret_file_reader.read_secret(setting, path, credential)
    except secret_file_reader.SecretFileError as err:
        raise SecretFileError(str(err)) from None


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
