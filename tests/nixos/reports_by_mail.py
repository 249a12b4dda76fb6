"""The single-host test's report client: makes a PNG report and reads the e-mail it sends.

    reports_by_mail.py create --web URL --user NAME --password-file F --database NAME \
        --broker URL --broker-password-file F --name NAME --to ADDRESS
    reports_by_mail.py check --maildir DIR --name NAME --to ADDRESS [--timeout S]

`create` makes, through Superset's REST API as the admin, a virtual dataset on demo.cities, a bar
chart of it and a PNG report e-mailed to ADDRESS, then sends `reports.execute` for it at once, as
beat's reports.scheduler does at its minute (the report's own crontab never fires during a test).
`check` waits for that e-mail in the SMTP sink's Maildir and checks its PNG: a real size, many
colours, none filling it (a blank page or an error page fails). Passwords are read from files,
never taken as arguments; exit status 1 with the reason on failure.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import io
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from celery import Celery
from PIL import Image

CITIES_SQL = "SELECT name, population FROM demo.cities"


class Api:
    """Superset's REST API as the admin: bearer token, CSRF token and its session cookie."""

    def __init__(self, base: str, user: str, password: str) -> None:
        self.base = base.rstrip("/") + "/"
        self.http = requests.Session()
        login = self.http.post(
            self.base + "api/v1/security/login",
            json={"username": user, "password": password, "provider": "db", "refresh": False},
            timeout=30,
        )
        login.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        csrf = self.http.get(self.base + "api/v1/security/csrf_token/", timeout=30)
        csrf.raise_for_status()
        self.http.headers.update({"X-CSRFToken": csrf.json()["result"], "Referer": self.base})

    def get(self, path: str) -> Any:
        answer = self.http.get(self.base + path, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def post(self, path: str, body: dict[str, Any]) -> int:
        answer = self.http.post(self.base + path, json=body, timeout=60)
        if answer.status_code != 201:
            sys.exit(f"POST {path}: HTTP {answer.status_code}: {answer.text[:500]}")
        return int(answer.json()["id"])


def create(args: argparse.Namespace) -> None:
    api = Api(args.web, args.user, Path(args.password_file).read_text().strip())
    databases = api.get("api/v1/database/")["result"]
    database = next(d["id"] for d in databases if d["database_name"] == args.database)
    dataset = api.post(
        "api/v1/dataset/",
        {"database": database, "schema": "demo", "table_name": f"cities_{uuid.uuid4().hex[:8]}", "sql": CITIES_SQL},
    )
    params = {
        "viz_type": "echarts_timeseries_bar",
        "datasource": f"{dataset}__table",
        "x_axis": "name",
        "metrics": [
            {
                "expressionType": "SIMPLE",
                "column": {"column_name": "population"},
                "aggregate": "SUM",
                "label": "population",
            }
        ],
        "groupby": [],
        "adhoc_filters": [],
        "row_limit": 10,
    }
    chart = api.post(
        "api/v1/chart/",
        {
            "slice_name": "Population by city",
            "viz_type": params["viz_type"],
            "datasource_id": dataset,
            "datasource_type": "table",
            "params": json.dumps(params),
        },
    )
    report = api.post(
        "api/v1/report/",
        {
            "type": "Report",
            "name": args.name,
            "chart": chart,
            "report_format": "PNG",
            "crontab": "0 0 1 1 *",  # sent below instead of waiting for beat's minute
            "timezone": "UTC",
            "active": True,
            "working_timeout": 300,
            "log_retention": 1,
            "grace_period": 1,
            "recipients": [{"type": "Email", "recipient_config_json": {"target": args.to}}],
            "creation_method": "alerts_reports",
        },
    )
    password = quote(Path(args.broker_password_file).read_text().strip(), safe="")
    broker = args.broker.replace("//", f"//:{password}@", 1)
    with Celery(broker=broker) as app:
        # What reports.scheduler sends for a due report (its eta is the scheduled time).
        app.send_task("reports.execute", args=[report], eta=datetime.now(tz=UTC))
    print(json.dumps({"report": report, "chart": chart, "dataset": dataset}))


def _found(maildir: Path, name: str, to: str) -> EmailMessage | None:
    for path in sorted((maildir / "new").glob("*")):
        with path.open("rb") as raw:
            message = email.message_from_binary_file(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if name in str(message["Subject"] or "") and to in str(message["X-RcptTo"] or ""):
            return message
    return None


def check(args: argparse.Namespace) -> None:
    started = time.monotonic()
    maildir = Path(args.maildir)
    while (message := _found(maildir, args.name, args.to)) is None:
        if time.monotonic() - started > args.timeout:
            sys.exit(f"no e-mail for {args.name!r} to {args.to} within {args.timeout} s")
        time.sleep(0.5)
    pngs = [part.get_payload(decode=True) for part in message.walk() if part.get_content_type() == "image/png"]
    if len(pngs) != 1 or not isinstance(pngs[0], bytes):
        sys.exit(f"expected one PNG in the e-mail, found {len(pngs)}: {[p.get_content_type() for p in message.walk()]}")
    image = Image.open(io.BytesIO(pngs[0])).convert("RGB")  # raises on a PNG that does not decode
    colours = sorted(image.getcolors(maxcolors=1 << 20) or [], reverse=True)
    facts = {
        "waited_seconds": round(time.monotonic() - started, 1),
        "from": str(message["From"]),
        "size": list(image.size),
        "colours": len(colours),
        "largest_colour_share": round(colours[0][0] / (image.width * image.height), 3),
    }
    print(json.dumps(facts))
    # A chart, not a blank or an error page: a real size, the bars' and the labels' colours.
    if image.width < 600 or image.height < 300 or len(colours) < 20 or facts["largest_colour_share"] > 0.97:
        sys.exit(f"the screenshot looks blank: {facts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("create")
    for option in ("web", "user", "password-file", "database", "broker", "broker-password-file", "name", "to"):
        made.add_argument(f"--{option}", required=True)
    read = commands.add_parser("check")
    for option in ("maildir", "name", "to"):
        read.add_argument(f"--{option}", required=True)
    read.add_argument("--timeout", type=float, default=90)
    args = parser.parse_args()
    {"create": create, "check": check}[args.command](args)


if __name__ == "__main__":
    main()
