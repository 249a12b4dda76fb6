#!/usr/bin/env python3
"""Write docs/nixos-options.md from the module's own option declarations (evaluated offline).

Usage: tools/nixos_options_doc.py [--check]   (--check: exit 1 when the committed file is stale)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "nixos-options.md"
NIX_CONFIG = "experimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false\nsubstituters ="
HEADER = """# NixOS options of `services.superset-async`

Generated from `nix/modules/superset-async/` by `tools/nixos_options_doc.py`; do not edit (a test
fails when this file and the module differ). Guide and a complete example: [nixos.md](nixos.md).
Read-only options are computed by the module and meant to be read (e.g. by other modules).
"""


def options() -> list[dict[str, object]]:
    proc = subprocess.run(
        [
            "nix-instantiate",
            "--eval",
            "--strict",
            "--json",
            "--readonly-mode",
            "-E",
            f"import {ROOT}/tests/nix/options-doc.nix {{ }}",
        ],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, NIX_CONFIG=NIX_CONFIG),
    )
    if proc.returncode != 0:
        sys.exit(f"evaluating the module's options failed:\n{proc.stderr}")
    result: list[dict[str, object]] = json.loads(proc.stdout)
    return result


def render(opts: list[dict[str, object]]) -> str:
    parts = [HEADER]
    for o in sorted(opts, key=lambda o: str(o["name"])):
        parts.append(f"## `{o['name']}`{' (read-only)' if o['readOnly'] else ''}\n")
        parts.append(str(o["description"]).strip() + "\n")
        parts.append(f"- type: {o['type']}")
        if o["default"] is not None:
            parts.append(f"- default: `{o['default']}`")
        if o["example"] is not None:
            example = str(o["example"]).strip()
            parts.append(
                f"- example:\n\n  ```nix\n  {example.replace(chr(10), chr(10) + '  ')}\n  ```"
                if "\n" in example
                else f"- example: `{example}`"
            )
        parts.append("")
    return "\n".join(parts).rstrip("\n") + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    text = render(options())
    if ap.parse_args().check:
        if not DOC.exists() or DOC.read_text() != text:
            sys.exit("docs/nixos-options.md is stale: run tools/nixos_options_doc.py")
        print("docs/nixos-options.md is current")
        return
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)} ({len(text.splitlines())} lines)")


if __name__ == "__main__":
    main()
