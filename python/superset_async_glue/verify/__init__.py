"""`superset-async verify`: prove the async stack end to end and name what is wrong (docs/verify.md).

`runner.run_verify` runs the nine checks concurrently; each area has its module (platform, redis_checks,
celery_checks, beat, web_env with probe.py, end_to_end with client.py); `diagnosis` names failure
modes; `report` renders the result as text or JSON.
"""

from .model import CheckResult, ExitCode, Status, VerifyReport
from .runner import run_verify
from .target import VerifyOptions

__all__ = ["CheckResult", "ExitCode", "Status", "VerifyOptions", "VerifyReport", "run_verify"]
