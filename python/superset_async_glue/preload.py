"""What a Superset process imports before it forks its children, so that they share it copy-on-write
instead of each importing it on the clock of its first request or task.

Superset imports a database's engine spec, SQLAlchemy dialect and DB-API driver lazily: the web's
first request that lists or queries databases, and the worker's first SQL Lab task, each paid for
it in every new child (clickhouse_connect alone is about 25 ms; every engine spec lookup imports all
of Superset's specs). The web's gunicorn master (gunicorn_hooks.py) and the worker's main process
(worker_app.py) call `import_for_queries` once, with Superset's app built, before the first fork.
Modules only: the metadata DB engine is disposed afterwards, so no connection made here is
inherited.
"""

from __future__ import annotations

import contextlib
import importlib


def _database_uris() -> list[str]:
    from superset.extensions import db  # noqa: PLC0415 - Superset's app is built by now
    from superset.models.core import Database  # noqa: PLC0415

    try:
        return [str(row[0]) for row in db.session.query(Database.sqlalchemy_uri).all()]
    finally:
        db.session.remove()
        db.engine.dispose()  # the children fork with no metadata DB connection made here


def import_for_queries() -> int:
    """Import Superset's engine specs, pyarrow's pandas conversion and the dialect and driver of each
    database in the metadata DB; inside the app's context. Returns the number of databases."""
    from sqlalchemy.engine.url import make_url  # noqa: PLC0415
    from superset.db_engine_specs import load_engine_specs  # noqa: PLC0415

    load_engine_specs()
    importlib.import_module("pyarrow.pandas_compat")  # a result set's conversion to pandas
    uris = _database_uris()
    for uri in uris:
        with contextlib.suppress(Exception):  # a driver missing here fails the query with Superset's message
            make_url(uri).get_dialect().dbapi()
    return len(uris)
