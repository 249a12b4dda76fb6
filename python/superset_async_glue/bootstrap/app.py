"""Superset's Flask app for bootstrap: imported lazily, configured exactly as web and worker are."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any

from ..commands import role_environment
from ..settings import Settings


@contextmanager
def superset_app(settings: Settings, config_path: Path) -> Iterator[Any]:
    """Yield Superset's app inside an app context and a request context.

    Superset reads SUPERSET_CONFIG_PATH when `superset` is first imported, so the environment is
    set before the import. The request context is what the command layer (event logger, g.user)
    expects; no request is served.
    """
    os.environ.update(role_environment(settings, config_path))
    # Superset prints "Loaded your LOCAL configuration" on import: stdout is bootstrap's report only.
    with redirect_stdout(sys.stderr):
        from superset.app import create_app  # noqa: PLC0415 - importing Superset takes seconds; only here

        app = create_app()
    with app.app_context(), app.test_request_context():
        yield app
