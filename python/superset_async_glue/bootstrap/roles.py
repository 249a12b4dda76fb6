"""`superset init` (permissions and roles), run only when Superset or its schema changed.

A marker in state_dir records the Superset version, the migration heads and which metadata DB it
was run against; init runs again whenever any of them differs or the Admin role has no permissions.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path

from ..settings import Settings
from .result import Outcome, StepResult

STEP = "init"
MARKER = "superset-async-init.json"


def marker_path(settings: Settings) -> Path:
    return Path(settings.state_dir) / MARKER


def wanted_marker(settings: Settings, heads: set[str]) -> dict[str, object]:
    return {
        "superset_version": version("apache-superset"),
        "migration_heads": sorted(heads),
        # Which metadata DB, without its password (the URI carries none): a new DB needs init again.
        "metadata_db": hashlib.sha256(settings.metadata_uri().encode()).hexdigest()[:16],
    }


def _admin_role_ready() -> bool:
    from superset import security_manager  # noqa: PLC0415

    role = security_manager.find_role(security_manager.auth_role_admin)
    return role is not None and len(role.permissions) > 0


def init_roles(settings: Settings, heads: set[str]) -> StepResult:
    """Run Superset's init (add_permissions + sync_role_definitions) unless the marker says it is current."""
    from superset import appbuilder, db, security_manager  # noqa: PLC0415

    path = marker_path(settings)
    wanted = wanted_marker(settings, heads)
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = None
    if recorded == wanted and _admin_role_ready():
        detail = f"roles and permissions current for superset {wanted['superset_version']}"
        return StepResult(STEP, Outcome.UNCHANGED, detail)
    # The body of `superset init` (superset/cli/main.py), inside one transaction.
    appbuilder.add_permissions(update_perms=True)
    security_manager.sync_role_definitions()
    db.session.commit()
    path.write_text(json.dumps(wanted, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    outcome = Outcome.CREATED if recorded is None else Outcome.UPDATED
    return StepResult(STEP, outcome, f"roles and permissions synced for superset {wanted['superset_version']}")
