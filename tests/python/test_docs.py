"""Documentation that can drift is checked: generated references, the Spanish set, README's commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from fixtures.common import REPO

GENERATED = {"settings-reference.md", "nixos-options.md"}


def test_nixos_options_reference_is_generated_from_the_module() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "nixos_options_doc.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_every_english_guide_has_a_spanish_one() -> None:
    english = {p.name for p in (REPO / "docs").glob("*.md")} - GENERATED
    spanish = {p.name for p in (REPO / "docs" / "es").glob("*.md")}
    assert english <= spanish, f"missing in docs/es/: {sorted(english - spanish)}"


def test_relative_links_in_docs_resolve() -> None:
    for page in [REPO / "README.md", *(REPO / "docs").rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.relative_to(REPO)} links to missing {target}"


def test_readme_commands_exist_and_ci_runs_the_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    for command in ("scripts/demo", "scripts/test"):
        assert re.search(rf"^{command}\b", readme, re.MULTILINE), f"README does not show {command}"
        assert os.access(REPO / command, os.X_OK), f"{command} is not executable"
    assert "exec scripts/test" in (REPO / ".ci" / "run").read_text()
