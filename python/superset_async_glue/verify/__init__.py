"""`superset-async verify`: prove the async stack end to end and name what is wrong (docs/verify.md).

Two layers. Gather (I/O, returning the plain facts of facts.py): target (the rendered config imported
once), platform_io (stack.json or systemd, /health, beat processes), redis_io, workers (with
celery_app), web_env (with probe.py, run by the web's interpreter), end_to_end (with client.py).
Judge: judge.py, one pure verdict per check. `diagnosis` is the one table of failure modes and their
fixes; `runner.run_verify` runs gather + judge per check concurrently; `report` renders the result.
"""

from .model import CheckResult, ExitCode, Status, VerifyReport
from .runner import run_verify
from .target import VerifyOptions

__all__ = ["CheckResult", "ExitCode", "Status", "VerifyOptions", "VerifyReport", "run_verify"]
