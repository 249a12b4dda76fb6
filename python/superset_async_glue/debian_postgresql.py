"""Where Debian keeps PostgreSQL's programs: /usr/lib/postgresql/<major version>/bin (package postgresql).

Shared by bootstrap's backups (pg_dump) and the runner's own PostgreSQL (initdb, postgres), so that a
dump is taken by the pg_dump of the server's own version.
"""

from __future__ import annotations

from pathlib import Path

DEBIAN_POSTGRESQL = Path("/usr/lib/postgresql")
INSTALL_HINT = "install Debian's PostgreSQL: `apt-get install -y postgresql` as root (scripts/setup does)"


def debian_postgresql_bin(root: Path = DEBIAN_POSTGRESQL) -> Path | None:
    """The newest of Debian's /usr/lib/postgresql/<major version>/bin, if any."""
    found = [p for p in root.glob("*/bin") if p.parent.name.isdigit()]
    return max(found, key=lambda p: int(p.parent.name)) if found else None
