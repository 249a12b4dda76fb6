"""bench/docs_tables.py: the results table it copies into both performance guides (docs/performance.md).

Pure text, milliseconds: every figure startup_memory.py reports has a Spanish name, and a copy
replaces exactly the block between the markers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import docs_tables  # noqa: E402 - bench/ is not a package
import startup_memory  # noqa: E402


def test_every_reported_figure_has_a_spanish_name() -> None:
    missing = [text for _, text, _ in startup_memory.ROWS if text not in docs_tables.SPANISH]
    assert missing == []


def test_the_copy_replaces_only_the_block_between_the_markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = (REPO / "bench" / "results" / "startup-memory.md").read_text()
    guide = tmp_path / "guide.md"
    guide.write_text(f"before\n{docs_tables.START}\nold table\n{docs_tables.END}\nafter\n")
    monkeypatch.setattr(docs_tables, "GUIDES", {"es": guide})
    docs_tables.update(report)
    text = guide.read_text()
    assert text.startswith("before\n") and text.endswith("\nafter\n")
    assert "old table" not in text
    assert "| cifra | A | B | B/A |" in text
    assert "arranque con estado existente -> primera consulta asíncrona, reloj" in text
