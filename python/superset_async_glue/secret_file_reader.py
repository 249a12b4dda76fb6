"""How a secret file is read at run time: the one copy of the rule, for the glue and rendered files.

systemd's $CREDENTIALS_DIRECTORY/<credential> comes first, when the unit received the secret through
LoadCredential= (the source file is then typically root-only and unreadable to the service); else
the file named in the settings. A trailing newline is dropped; an empty file is refused. Errors name
the setting and the path, never the value.

The glue imports this module (secret_io.py). The rendered superset_config.py and flowerconfig.py
must import without the glue, so render.py copies this file's source into them verbatim: keep it
standard library only, self-contained, and valid without `from __future__` imports.
"""

import os
from pathlib import Path


class SecretFileError(RuntimeError):
    """A secret file named in the settings is missing, unreadable or empty."""


def secret_path(path: str, credential: str | None) -> str:
    """$CREDENTIALS_DIRECTORY/<credential> when systemd passed it, else `path`."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if credential and directory and (Path(directory) / credential).exists():
        return str(Path(directory) / credential)
    return path


def read_secret(setting: str, path: str, credential: str | None = None) -> str:
    """The secret in `path` (or in its systemd credential) without its trailing newline."""
    path = secret_path(path, credential)
    try:
        value = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as err:
        raise SecretFileError(f"{setting}: cannot read secret file {path}: {err.strerror}") from None
    if not value:
        raise SecretFileError(f"{setting}: secret file {path} is empty")
    return value
