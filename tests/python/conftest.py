"""Shared pytest set-up. Each area keeps its fixtures in fixtures/<area>.py, registered here."""

pytest_plugins = [
    "fixtures.common",
    "fixtures.redis_server",
    "fixtures.stack",
    "fixtures.verify_faults",
    "fixtures.browser",
    "fixtures.smtp_sink",
]
