"""The admin user, created through FAB's security manager (what `superset fab create-admin` calls)."""

from __future__ import annotations

from typing import Any

from ..secret_io import read_secret
from ..settings import ADMIN_CREDENTIAL, Settings
from .result import Outcome, StepResult


def ensure_admin(settings: Settings) -> tuple[StepResult, Any]:
    """Create the admin user unless it exists; return the result and the user (None when absent)."""
    from superset import security_manager  # noqa: PLC0415

    admin = settings.admin
    step = f"admin '{admin.username}'"
    user = security_manager.find_user(username=admin.username)
    if user is not None:
        return StepResult(step, Outcome.UNCHANGED, "user exists; its password is left as it is"), user
    if admin.password_file is None:
        return StepResult(step, Outcome.FAILED, "admin.password_file is not set, so no admin can be created"), None
    password = read_secret("admin.password_file", admin.password_file, ADMIN_CREDENTIAL)
    role = security_manager.find_role(security_manager.auth_role_admin)
    user = security_manager.add_user(
        admin.username, admin.first_name, admin.last_name, admin.email, role, password=password
    )
    if not user:
        return StepResult(step, Outcome.FAILED, "Superset's security manager refused to add the user (see log)"), None
    return StepResult(step, Outcome.CREATED, f"role {security_manager.auth_role_admin}"), user
