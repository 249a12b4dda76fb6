"""The glue's one error hierarchy: every failure a user can cause says what was expected and what was found."""

from __future__ import annotations

from dataclasses import dataclass


class GlueError(Exception):
    """Base of every error the glue raises on purpose; the CLI prints it without a traceback."""

    exit_code = 1


@dataclass(frozen=True)
class SettingProblem:
    """One invalid setting: where it is, what was found, and what to do."""

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class SettingsError(GlueError):
    """The settings file is unreadable or invalid; nothing was written."""

    exit_code = 2

    def __init__(self, source: str, problems: list[SettingProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} invalid setting(s); nothing was written"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


class UsageError(GlueError):
    """A command was called in a way that cannot work (missing tool, wrong state)."""

    exit_code = 2
