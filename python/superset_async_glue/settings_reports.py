"""The `reports` section of the settings: Alerts & Reports delivered by e-mail (or Slack) with Chromium screenshots.

Kept apart from settings.py, which imports `Reports` as one field. Superset's own names are given in
each description, so that upstream's documentation applies
(https://superset.apache.org/docs/configuration/alerts-reports).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator


def _located(location: str, message: str) -> ValueError:
    """settings.LocatedValueError, which loading.py turns into the field's location. Imported late:
    settings.py imports this module, and validation runs only once both are loaded."""
    from .settings import LocatedValueError  # noqa: PLC0415 - see above

    return LocatedValueError(location, message)


def _secret_path(value: str) -> str:
    if not value.startswith("/") or re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError(
            "expected an absolute path to a file that holds the secret (e.g. /run/keys/smtp-password); "
            "never put the secret itself in the settings"
        )
    return str(PurePosixPath(value))


def _program_path(value: str) -> str:
    if not value.startswith("/") or re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError("expected the absolute path of the program (starting with /)")
    return str(PurePosixPath(value))


def _host(value: str) -> str:
    if not re.match(r"^[A-Za-z0-9_.:-]{1,253}$", value):
        raise ValueError("expected a bare host name or IP address (no scheme, port, credentials or whitespace)")
    return value


# Same JSON-schema mark as settings.SecretFile: the NixOS module's contract refuses store paths for it.
SecretFile = Annotated[str, AfterValidator(_secret_path), Field(json_schema_extra={"secret_file": True})]
ProgramPath = Annotated[str, AfterValidator(_program_path)]
Host = Annotated[str, AfterValidator(_host)]
_EMAIL = r"^[^@\s]+@[^@\s]+$"

# chromedriver finds the browser by these names on its PATH (chromedriver's chrome_finder); Superset
# 6.1 cannot pass a binary location (WEBDRIVER_CONFIGURATION's top-level binary_location also reaches
# the WebDriver constructor, a TypeError), so the rendered config puts the browser's directory first
# on chromedriver's PATH and the browser must carry one of these names.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def _defaults() -> Any:
    return {}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class SMTP(_Model):
    """The mail server reports are sent through (SMTP_*)."""

    host: Host | None = Field(None, description="SMTP_HOST; reports by e-mail need it.")
    port: int = Field(25, ge=1, le=65535, description="SMTP_PORT (25, 587 with starttls, 465 with ssl).")
    user: str | None = Field(None, min_length=1, description="SMTP_USER; login only when password_file is set too.")
    password_file: SecretFile | None = Field(None, description="File holding SMTP_PASSWORD.")
    starttls: bool = Field(False, description="SMTP_STARTTLS: upgrade the connection with STARTTLS.")
    ssl: bool = Field(False, description="SMTP_SSL: TLS from the first byte (port 465).")
    verify_certificate: bool = Field(
        True, description="SMTP_SSL_SERVER_AUTH: check the server's certificate (Superset's default does not)."
    )
    mail_from: str = Field("superset@localhost", pattern=_EMAIL, description="SMTP_MAIL_FROM: the sender address.")


class Slack(_Model):
    """Slack delivery (SLACK_API_TOKEN), optional."""

    token_file: SecretFile | None = Field(None, description="File holding the Slack bot token (xoxb-...).")


class Webdriver(_Model):
    """The headless Chromium that takes the screenshots, and its timeouts."""

    chromium_path: ProgramPath = Field(
        "/usr/bin/chromium", description="The browser (Debian: /usr/bin/chromium; NixOS: nixpkgs' chromium)."
    )
    chromedriver_path: ProgramPath = Field(
        "/usr/bin/chromedriver", description="Its driver, same version (Debian: chromium-driver)."
    )
    jitless: bool = Field(
        True,
        description=(
            "Run the page's JavaScript without V8's JIT (--js-flags=--jitless): the browser then needs no "
            "writable-and-executable memory and the worker unit keeps MemoryDenyWriteExecute=true. "
            "False: faster pages, and the NixOS worker unit drops MemoryDenyWriteExecute."
        ),
    )
    locate_seconds: int = Field(
        10, ge=1, le=600, description="SCREENSHOT_LOCATE_WAIT: wait for the chart's element to appear."
    )
    load_seconds: int = Field(
        60, ge=1, le=3600, description="SCREENSHOT_LOAD_WAIT: wait for the chart to finish loading."
    )
    headstart_seconds: int = Field(
        3, ge=0, le=60, description="SCREENSHOT_SELENIUM_HEADSTART: pause after the page opened."
    )
    animation_seconds: int = Field(
        5, ge=0, le=60, description="SCREENSHOT_SELENIUM_ANIMATION_WAIT: pause for chart animations."
    )
    base_url: str | None = Field(
        None,
        description=(
            "WEBDRIVER_BASEURL: where the worker's browser reaches the web (http://host:port/); default: this "
            "host's web bind and port. Set it when the worker runs on another host than the web."
        ),
    )

    @field_validator("chromium_path")
    @classmethod
    def _browser_name(cls, value: str) -> str:
        if PurePosixPath(value).name not in BROWSER_NAMES:
            raise ValueError(
                f"chromedriver finds the browser by its file name, one of {', '.join(BROWSER_NAMES)}; "
                f"found {PurePosixPath(value).name!r}: point at the browser's bin/chromium (a symlink is fine)"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
            raise ValueError("expected an http(s):// address without credentials, such as http://10.0.0.5:8088/")
        if re.search(r"[\s\x00-\x1f\x7f]", value) or parts.query or parts.fragment:
            raise ValueError("expected a plain address (no whitespace, query or fragment)")
        return value if value.endswith("/") else value + "/"


class Reports(_Model):
    """Alerts & Reports (feature flag ALERT_REPORTS): run by the worker, scheduled by beat every minute."""

    enabled: bool = Field(False, description="Feature flag ALERT_REPORTS; needs smtp.host or slack.token_file.")
    executor: str | None = Field(
        None,
        min_length=1,
        description=(
            "ALERT_REPORTS_EXECUTORS: the user whose rights the screenshots and alert queries run with "
            "(FixedExecutor); default: admin.username."
        ),
    )
    smtp: SMTP = Field(default_factory=_defaults)
    slack: Slack = Field(default_factory=_defaults)
    webdriver: Webdriver = Field(default_factory=_defaults)

    @model_validator(mode="after")
    def _deliverable(self) -> Reports:
        # Checked only while enabled: a disabled section may be half filled in (and the NixOS module's
        # contract probes it with secret files alone).
        if not self.enabled:
            return self
        if self.smtp.starttls and self.smtp.ssl:
            raise _located("smtp.ssl", "starttls and ssl are both on; use ssl for port 465, starttls for 587")
        if self.smtp.password_file and not self.smtp.user:
            raise _located("smtp.user", "password_file is set but user is not; Superset logs in only with both")
        if self.smtp.host is None and self.slack.token_file is None:
            raise _located(
                "smtp.host",
                "reports are enabled but nothing can deliver them: set reports.smtp.host (e-mail) or "
                "reports.slack.token_file (Slack), or set reports.enabled to false",
            )
        return self


# `celery worker -B` embeds a beat in the worker: with the beat role, or on every worker host, that is a
# second beat, and every report would be sent once per beat (a known Superset problem).
_EMBEDDED_BEAT_ARGS = ("-B", "--beat")


def reports_problem(
    reports: Reports, *, beat_enabled: bool, beat_tasks: set[str], worker_args: tuple[str, ...]
) -> tuple[str, str] | None:
    """A problem (location, message) of enabled reports with the rest of the settings, or None.

    One settings file describes one host, so the number of beats of a whole deployment is not written
    in it. What it does say, and is checked here: a beat embedded in this host's worker (-B) next to
    the beat role or on each worker host, and whether beat sends reports.scheduler at all. The local
    runner starts exactly one beat per stack; the NixOS module runs beat only on the host where
    beat.enable is set (docs/reports.md).
    """
    if not reports.enabled:
        return None
    embedded = [a for a in worker_args if a in _EMBEDDED_BEAT_ARGS]
    if embedded:
        return (
            "worker.extra_args",
            f"{embedded[0]} embeds a Celery beat in the worker: "
            + ("with beat.enabled this host runs two beats" if beat_enabled else "every worker host would run one")
            + " and each report would be sent once per beat; remove it and run beat once (beat.enabled on one host)",
        )
    if beat_enabled and "reports.scheduler" not in beat_tasks:
        return (
            "celery.beat_schedule",
            "reports are enabled but no beat entry sends reports.scheduler, so no report would ever run; "
            "keep the default entry 'reports.scheduler' (every minute)",
        )
    return None
