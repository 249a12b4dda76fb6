"""The one renderer of verify's results: a coloured line per check as it arrives, the diagnosis and
summary at the end, or the whole report as JSON. Exit codes are model.ExitCode."""

from __future__ import annotations

import json
from typing import Any

import click

from .diagnosis import remedy
from .model import CHECKS, OPTIONAL_CHECKS, CheckResult, Status, VerifyReport

_STYLE = {
    Status.PASS: ("PASS", "green"),
    Status.WARN: ("WARN", "yellow"),
    Status.FAIL: ("FAIL", "red"),
    Status.SKIPPED: ("SKIP", "cyan"),
}


def header(settings: str, config: str) -> str:
    return click.style(f"superset-async verify: settings {settings}, config {config}", bold=True)


def check_line(result: CheckResult) -> str:
    label, colour = _STYLE[result.status]
    spec = result.spec
    # The nine are "n/9"; an optional check (Flower) is numbered after them and says so.
    number = f"{spec.number} (optional)" if spec in OPTIONAL_CHECKS else f"{spec.number}/{len(CHECKS)}"
    line = (
        f"{click.style(f'[{label}]', fg=colour, bold=True)} {number} {spec.title}: "
        f"{result.reason} {click.style(f'({result.seconds:.2f}s)', dim=True)}"
    )
    if (fix := remedy_of(result)) is not None:
        line += "\n" + click.style("       remedy: ", fg=colour) + fix
    return line


def remedy_of(result: CheckResult) -> str | None:
    """What to do about a failed or warning check: the fix of the failure mode it points at first."""
    return remedy(result.modes) if result.status in (Status.FAIL, Status.WARN) else None


def summary(report: VerifyReport) -> str:
    lines = []
    if report.findings:
        lines.append(click.style("Diagnosis:", bold=True))
        for finding in report.findings:
            checks = ", ".join(map(str, finding.checks))
            lines.append(f"  {click.style(finding.code, fg='red', bold=True)} (check {checks}): {finding.title}")
            lines.append(f"    fix: {finding.fix}")
    counts = ", ".join(
        f"{report.count(s)} {name}"
        for s, name in (
            (Status.PASS, "passed"),
            (Status.WARN, "warned"),
            (Status.FAIL, "failed"),
            (Status.SKIPPED, "skipped"),
        )
    )
    verdict = (
        click.style("FAILED", fg="red", bold=True)
        if report.count(Status.FAIL)
        else click.style("OK", fg="green", bold=True)
    )
    skipped = report.count(Status.SKIPPED)
    note = f" (skipped checks are not passes: {skipped} did not run)" if skipped else ""
    lines.append(f"{verdict}: {counts} on platform {report.platform} in {report.seconds:.2f}s{note}")
    return "\n".join(lines)


def as_dict(report: VerifyReport) -> dict[str, Any]:
    return {
        "ok": report.exit_code == 0,
        "exit_code": int(report.exit_code),
        "platform": report.platform,
        "settings": report.settings_path,
        "config": report.config_path,
        "seconds": round(report.seconds, 3),
        "summary": {s.value: report.count(s) for s in Status},
        "checks": [
            {
                "number": r.spec.number,
                "key": r.spec.key,
                "title": r.spec.title,
                "status": r.status.value,
                "reason": r.reason,
                "seconds": round(r.seconds, 3),
                "remedy": remedy_of(r),
                "diagnosis": list(r.modes) if r.status in (Status.FAIL, Status.WARN) else [],
                "details": r.details,
            }
            for r in report.results
        ],
        "diagnosis": [
            {"code": f.code, "title": f.title, "fix": f.fix, "checks": list(f.checks)} for f in report.findings
        ],
    }


def as_json(report: VerifyReport) -> str:
    return json.dumps(as_dict(report), indent=2, sort_keys=False, default=str)
