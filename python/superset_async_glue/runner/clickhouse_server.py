"""A local ClickHouse server for the demo: Debian's clickhouse-server with its own config and data.

Debian's /etc/clickhouse-server/config.xml and users.xml are copied with every path moved under
the state directory, only loopback listeners and our ports, and the user of the declared database
given the password from its password file (stored as SHA-256, the file mode 0600). No user keeps
an empty password: Debian's `default` gets a generated one (run/clickhouse/default_password, 0600)
unless it is the declared user.
"""

from __future__ import annotations

import copy
import hashlib
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import UsageError
from ..secret_io import ensure_secret, read_secret, write_private
from ..settings import Database, Settings

SYSTEM_CONFIG_DIR = Path("/etc/clickhouse-server")
# The user becomes an XML element's name in users.xml, the database a quoted name in the demo's SQL.
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DATABASE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
INSTALL_HINT = (
    "install Debian's clickhouse-server: `sudo apt-get install -y clickhouse-server` (as root without sudo, or "
    "scripts/setup as root); or start with --clickhouse none and declare an external ClickHouse in the settings"
)


@dataclass(frozen=True)
class ClickHousePlan:
    """The local server for one declared database."""

    argv: tuple[str, ...]
    database: str
    http_port: int
    tcp_port: int
    user: str
    password_file: str | None
    root: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def local_clickhouse_database(settings: Settings) -> Database | None:
    """The first declared ClickHouse database on a loopback address: the one the runner serves."""
    for declared in settings.databases:
        parts = urlsplit(declared.uri)
        if parts.scheme.startswith("clickhouse") and parts.hostname in LOOPBACK:
            return declared
    return None


def find_clickhouse_server() -> str:
    found = shutil.which("clickhouse-server") or shutil.which("clickhouse-server", path="/usr/sbin:/usr/bin")
    if not found:
        raise UsageError(f"clickhouse-server not found (looked on PATH and in /usr/sbin); {INSTALL_HINT}")
    if not (SYSTEM_CONFIG_DIR / "config.xml").is_file() or not (SYSTEM_CONFIG_DIR / "users.xml").is_file():
        raise UsageError(f"{SYSTEM_CONFIG_DIR}/config.xml or users.xml is missing; {INSTALL_HINT}")
    return found


def _set(root: ET.Element, tag: str, value: str) -> None:
    element = root.find(tag)
    if element is None:
        element = ET.SubElement(root, tag)
    element.text = value


def _server_config(http_port: int, tcp_port: int, root: Path, logs: Path, users: Path) -> str:
    # Parsing the distribution's own config file (trusted input on this machine).
    tree = ET.parse(SYSTEM_CONFIG_DIR / "config.xml")  # noqa: S314
    config = tree.getroot()
    for tag in ("listen_host", "https_port", "tcp_port_secure", "interserver_http_port", "mysql_port", "include_from"):
        for element in config.findall(tag):
            config.remove(element)
    ET.SubElement(config, "listen_host").text = "127.0.0.1"
    _set(config, "http_port", str(http_port))
    _set(config, "tcp_port", str(tcp_port))
    logger = config.find("logger")
    if logger is not None:
        _set(logger, "log", str(logs / "clickhouse-server.log"))
        _set(logger, "errorlog", str(logs / "clickhouse-server.err.log"))
    for tag, sub in (
        ("path", ""),
        ("tmp_path", "tmp/"),
        ("user_files_path", "user_files/"),
        ("format_schema_path", "format_schemas/"),
    ):
        _set(config, tag, f"{root}/{sub}")
    _set(config, "users_config", str(users))
    # ClickHouse applies its own umask (027 by default) over ours: its data and logs hold query results.
    _set(config, "umask", "077")
    return ET.tostring(config, encoding="unicode")


def _set_password(entry: ET.Element, password: str) -> None:
    for tag in ("password", "password_sha256_hex", "password_double_sha1_hex"):
        for element in entry.findall(tag):
            entry.remove(element)
    ET.SubElement(entry, "password_sha256_hex").text = hashlib.sha256(password.encode()).hexdigest()


def _users_config(user: str, password: str, default_password: str) -> str:
    tree = ET.parse(SYSTEM_CONFIG_DIR / "users.xml")  # noqa: S314 - the distribution's own file
    users = tree.getroot().find("users")
    if users is None:
        raise UsageError(f"{SYSTEM_CONFIG_DIR}/users.xml has no <users> section; {INSTALL_HINT}")
    default = users.find("default")
    for entry in list(users):
        networks = entry.find("networks")
        if networks is not None:  # loopback only, whatever the distribution allows
            for ip in list(networks):
                networks.remove(ip)
            for address in ("::1", "127.0.0.1"):
                ET.SubElement(networks, "ip").text = address
    target = users.find(user)
    if target is None:
        target = ET.SubElement(users, user)
        if default is not None:
            for child in default:
                target.append(copy.deepcopy(child))
    _set_password(target, password)
    if default is not None and user != "default":
        _set_password(default, default_password)
    return ET.tostring(tree.getroot(), encoding="unicode")


def plan_clickhouse(declared: Database, run_dir: Path, data_root: Path, logs: Path, spare_port: int) -> ClickHousePlan:
    """Write config.xml and users.xml (0600) for `declared` and return how to start the server.

    The declared URI fixes one port (HTTP for clickhousedb://, native TCP for clickhouse+native://);
    `spare_port` is used for the other.
    """
    binary = find_clickhouse_server()
    parts = urlsplit(declared.uri)
    native = "native" in parts.scheme
    port = parts.port or (9000 if native else 8123)
    http_port, tcp_port = (spare_port, port) if native else (port, spare_port)
    user = parts.username or "default"
    database = parts.path.strip("/") or "default"
    where = f"databases '{declared.name}'"
    if not _USER.match(user) or not _DATABASE.match(database):
        raise UsageError(
            f"{where}: the local ClickHouse takes a user of letters, digits and _ (not starting with a digit) and a "
            "database of letters, digits and _; rename them in the URI or start with --clickhouse none"
        )
    if declared.password_file is None:
        raise UsageError(
            f"{where}: password_file is not set; the local ClickHouse gives every user a password (an empty one lets "
            "any local user in): write one to a file (chmod 600) and set password_file to it"
        )
    password = read_secret(f"{where} password_file", declared.password_file)
    for sub in ("", "tmp", "user_files", "format_schemas"):
        (data_root / sub).mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    config_dir = run_dir / "clickhouse"
    default_password = read_secret("local ClickHouse default user", str(ensure_secret(config_dir / "default_password")))
    users_file = config_dir / "users.xml"
    write_private(users_file, _users_config(user, password, default_password))
    config_file = config_dir / "config.xml"
    write_private(config_file, _server_config(http_port, tcp_port, data_root, logs, users_file))
    return ClickHousePlan(
        (binary, f"--config-file={config_file}"),
        database,
        http_port,
        tcp_port,
        user,
        declared.password_file,
        data_root,
    )
