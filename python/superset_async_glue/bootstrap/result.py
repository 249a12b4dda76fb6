"""What each bootstrap step did, and the one place that prints it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Outcome(enum.Enum):
    """The effect of one step on the metadata database."""

    UNCHANGED = "unchanged"
    CREATED = "created"
    UPDATED = "updated"
    FAILED = "failed"
    SKIPPED = "skipped"


CHANGES = (Outcome.CREATED, Outcome.UPDATED)


@dataclass(frozen=True)
class StepResult:
    """One step: its name (e.g. "database 'ClickHouse (demo)'"), outcome and a short reason."""

    step: str
    outcome: Outcome
    detail: str = ""

    def line(self) -> str:
        return f"{self.step}: {self.outcome.value}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class BootstrapReport:
    """Every step's result, in the order they ran."""

    steps: list[StepResult] = field(default_factory=list)

    @property
    def failed(self) -> list[StepResult]:
        return [s for s in self.steps if s.outcome is Outcome.FAILED]

    @property
    def changed(self) -> list[StepResult]:
        return [s for s in self.steps if s.outcome in CHANGES]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def summary(self) -> str:
        """The last line of the output; tests and the runner read it."""
        if self.failed:
            names = ", ".join(s.step for s in self.failed)
            return f"bootstrap: {len(self.failed)} step(s) failed: {names}"
        if not self.changed:
            return "bootstrap: nothing changed"
        return f"bootstrap: {len(self.changed)} step(s) changed: " + ", ".join(s.step for s in self.changed)
