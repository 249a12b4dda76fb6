#!/usr/bin/env python3
"""Regenerate the hashed, host-free Python lock from python/lock/*.in.

The lock is resolved once, natively (so every version is the one pip really chose here), then the
distribution file of each pinned version is looked up for every target (CPython 3.11 and 3.12 on
Linux x86_64 and aarch64) with pip's own platform-targeted dry run. The result records names,
versions, file names and sha256 only: never an index or download address.

Outputs (all under python/lock/):
  requirements.txt       runtime set, for `pip install --require-hashes -r`
  requirements-dev.txt   test and lint tools not already in the runtime set
  wheels.json            per target, the runtime files (for Nix's fetchPypi)

It never silently takes an older version than plain pip would: each set is resolved a second time
without --prefer-binary (the same requirements, as `pip install -r` does), and every package the lock
would take at an older version fails the run with the reason (usually: the newer version is published
as a source distribution only), unless requirements.in pins exactly that version with a reason
(`name==version  # why`).

Usage: tools/relock.py [--check]   (--check: fail if the committed lock differs from a fresh one)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK_DIR = ROOT / "python" / "lock"
PYTHONS = ("3.11", "3.12")
MACHINES = ("x86_64", "aarch64")
# Oldest glibc we accept wheels for, newest first (pip does not expand a --platform tag downwards).
MANYLINUX = [f"manylinux_2_{minor}" for minor in range(28, 16, -1)] + ["manylinux2014"]
# pip reads no configuration files: local find-links or extra indexes must not leak into the lock.
PIP_ENV = dict(os.environ, PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")


@dataclass(frozen=True)
class Target:
    """One interpreter and machine the lock must install on."""

    python: str
    machine: str

    @property
    def key(self) -> str:
        return f"cp{self.python.replace('.', '')}-{self.machine}-linux"

    def marker_envs(self) -> list[dict[str, str]]:
        """Marker environments of the first and a late patch release (markers on patch levels exist)."""
        return [self._env(f"{self.python}.{patch}") for patch in (0, 99)]

    def _env(self, full_version: str) -> dict[str, str]:
        return {
            "python_version": self.python,
            "python_full_version": full_version,
            "platform_machine": self.machine,
            "sys_platform": "linux",
            "platform_system": "Linux",
            "os_name": "posix",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
        }


TARGETS = tuple(Target(p, m) for p in PYTHONS for m in MACHINES)


@dataclass(frozen=True)
class DistFile:
    """A distribution file of a pinned package, as the registry serves it."""

    filename: str
    sha256: str


@dataclass
class Pinned:
    """A package, its pinned version and the files each target installs."""

    name: str
    version: str
    requires: list[str]
    sdist_only: bool
    files: dict[str, DistFile] = field(default_factory=dict)


def pip_report(pip: str, args: list[str]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [pip, "install", "--dry-run", "--ignore-installed", "--quiet", "--report", str(report)]
        proc = subprocess.run(cmd + args, check=False, env=PIP_ENV, text=True, capture_output=True)
        if proc.returncode != 0:
            sys.exit(f"pip failed: {' '.join(cmd + args)}\n{proc.stderr}")
        install: list[dict[str, Any]] = json.loads(report.read_text())["install"]
        return install


def dist_file(item: dict[str, Any]) -> DistFile:
    info = item["download_info"]
    sha = info.get("archive_info", {}).get("hashes", {}).get("sha256")
    if not sha:
        sys.exit(f"no sha256 for {item['metadata']['name']}: the index must publish hashes")
    return DistFile(filename=info["url"].rsplit("/", 1)[1], sha256=sha)


def resolve_native(
    pip: str, requirements: Path, constraints: Path | None, prefer_binary: bool = True
) -> dict[str, Pinned]:
    """Resolve for this interpreter; `prefer_binary=False` is plain pip's choice (the newest versions)."""
    args = ["--prefer-binary"] if prefer_binary else []
    args += ["-r", str(requirements)]
    if constraints:
        args += ["-c", str(constraints)]
    pinned: dict[str, Pinned] = {}
    for item in pip_report(pip, args):
        meta = item["metadata"]
        name = canonicalize_name(meta["name"])
        # With --prefer-binary an sdist is taken only where no version has a wheel; without it, an sdist
        # means the newest version has none.
        sdist_only = not dist_file(item).filename.endswith(".whl")
        pinned[name] = Pinned(name, meta["version"], meta.get("requires_dist") or [], sdist_only)
    return pinned


@dataclass(frozen=True)
class Downgrade:
    """A package the lock would take at an older version than plain pip resolves, and why."""

    name: str
    locked: str
    plain: str
    why: str

    def __str__(self) -> str:
        return f"{self.name}: lock {self.locked}, plain pip {self.plain} ({self.why})"


def named_pins(requirements_in: str) -> dict[str, str]:
    """name -> version of each `name==version  # reason` line: a pin someone chose and explained."""
    pins: dict[str, str] = {}
    for raw in requirements_in.splitlines():
        spec, _, reason = raw.partition("#")
        if not spec.strip() or spec.strip().startswith("-") or not reason.strip():
            continue
        req = Requirement(spec.strip())
        exact = [s for s in req.specifier if s.operator == "=="]
        if len(req.specifier) == 1 and exact:
            pins[canonicalize_name(req.name)] = exact[0].version
    return pins


def downgrades(locked: Mapping[str, Pinned], plain: Mapping[str, Pinned], pins: Mapping[str, str]) -> list[Downgrade]:
    """Each package `locked` holds at an older version than `plain`, unless pinned to it with a reason."""
    found = []
    for name in sorted(locked.keys() & plain.keys()):
        ours, theirs = locked[name], plain[name]
        pinned = pins.get(name)
        if Version(ours.version) >= Version(theirs.version) or (pinned and Version(pinned) == Version(ours.version)):
            continue
        if theirs.sdist_only:
            why = f"{theirs.version} is published as a source distribution only; --prefer-binary took the newest wheel"
        else:
            why = f"{theirs.version} has a wheel; another package's wheel-preferring choice holds it back"
        found.append(Downgrade(name, ours.version, theirs.version, why))
    return found


def refuse_downgrades(found: list[Downgrade], infile: Path) -> None:
    if found:
        listing = "\n".join(f"  {d}" for d in found)
        sys.exit(
            f"relock: {infile.name}: the lock would take {len(found)} package(s) at an older version than plain pip "
            f"resolves:\n{listing}\nAdd `name==<newer version>` to {infile.name} (an sdist is built and hashed like "
            "any other file), or keep the older one deliberately with `name==<older version>  # reason`."
        )


def roots(requirements: Path) -> list[Requirement]:
    reqs = []
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            reqs.append(Requirement(line))
    return reqs


def closure(pinned: dict[str, Pinned], start: Iterable[Requirement], target: Target) -> set[str]:
    """Names needed on `target`, following requires_dist with the target's markers."""
    envs = target.marker_envs()
    seen: set[tuple[str, str]] = set()
    needed: set[str] = set()
    todo = [(req, "") for req in start]
    while todo:
        req, extra = todo.pop()
        if req.marker and not any(req.marker.evaluate({**env, "extra": extra}) for env in envs):
            continue
        name = canonicalize_name(req.name)
        if name not in pinned:
            sys.exit(f"{name} is needed on {target.key} but was not resolved natively; add it to the .in file")
        needed.add(name)
        for wanted in {""} | set(req.extras):
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            todo += [(Requirement(r), wanted) for r in pinned[name].requires]
    return needed


def fetch_files(pip: str, pinned: dict[str, Pinned], names: set[str], target: Target) -> None:
    args = ["--no-deps", "--target", "/nonexistent", "--only-binary=:all:"]
    sdists = {n for n in names if pinned[n].sdist_only}
    if sdists:
        args.append("--no-binary=" + ",".join(sorted(sdists)))
    args += [
        "--implementation",
        "cp",
        "--python-version",
        target.python,
        "--abi",
        f"cp{target.python.replace('.', '')}",
    ]
    for tag in MANYLINUX:
        args += ["--platform", f"{tag}_{target.machine}"]
    args += [f"{n}=={pinned[n].version}" for n in sorted(names)]
    for item in pip_report(pip, args):
        pinned[canonicalize_name(item["metadata"]["name"])].files[target.key] = dist_file(item)


def marker_for(keys: set[str]) -> str:
    """The environment marker selecting exactly the targets in `keys` ("" when all)."""
    if keys == {t.key for t in TARGETS}:
        return ""
    chosen = [t for t in TARGETS if t.key in keys]
    pythons = {t.python for t in chosen}
    machines = {t.machine for t in chosen}
    if len(chosen) == len(pythons) * len(machines):
        parts = []
        if len(pythons) < len(PYTHONS):
            parts.append(" or ".join(f'python_version == "{p}"' for p in sorted(pythons)))
        if len(machines) < len(MACHINES):
            parts.append(" or ".join(f'platform_machine == "{m}"' for m in sorted(machines)))
        return " and ".join(f"({p})" if " or " in p and len(parts) > 1 else p for p in parts)
    return " or ".join(f'(python_version == "{t.python}" and platform_machine == "{t.machine}")' for t in chosen)


def requirements_txt(pinned: dict[str, Pinned], header: str) -> str:
    lines = [
        f"# {header}",
        "# Generated by tools/relock.py; do not edit. Install: pip install --require-hashes -r <this file>",
        "",
    ]
    for name in sorted(pinned):
        pkg = pinned[name]
        if not pkg.files:
            continue
        marker = marker_for(set(pkg.files))
        spec = f"{name}=={pkg.version}" + (f" ; {Marker(marker)}" if marker else "")
        hashes = sorted({f.sha256 for f in pkg.files.values()})
        lines.append(spec + " \\")
        lines += [f"    --hash=sha256:{h}" + (" \\" if i < len(hashes) - 1 else "") for i, h in enumerate(hashes)]
    return "\n".join(lines) + "\n"


def wheels_json(pinned: dict[str, Pinned]) -> str:
    targets: dict[str, list[dict[str, str]]] = {}
    for target in TARGETS:
        targets[target.key] = [
            {
                "name": n,
                "version": p.version,
                "filename": p.files[target.key].filename,
                "sha256": p.files[target.key].sha256,
            }
            for n, p in sorted(pinned.items())
            if target.key in p.files
        ]
    return (
        json.dumps(
            {"comment": "Generated by tools/relock.py from requirements.in", "targets": targets},
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )


def lock_set(pip: str, infile: Path, constraints: Path | None, exclude: set[str]) -> dict[str, Pinned]:
    pinned = resolve_native(pip, infile, constraints)
    plain = resolve_native(pip, infile, constraints, prefer_binary=False)
    refuse_downgrades(downgrades(pinned, plain, named_pins(infile.read_text())), infile)
    start = roots(infile)
    for target in TARGETS:
        fetch_files(pip, pinned, closure(pinned, start, target) - exclude, target)
    return {n: p for n, p in pinned.items() if n not in exclude}


def generate(pip: str) -> dict[str, str]:
    runtime = lock_set(pip, LOCK_DIR / "requirements.in", None, set())
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as cons:
        cons.write("".join(f"{n}=={p.version}\n" for n, p in sorted(runtime.items())))
        cons.flush()
        dev = lock_set(pip, LOCK_DIR / "requirements-dev.in", Path(cons.name), set(runtime))
    return {
        "requirements.txt": requirements_txt(runtime, "Superset 6.1 runtime and the glue's dependencies"),
        "requirements-dev.txt": requirements_txt(dev, "Test and lint tools (install together with requirements.txt)"),
        "wheels.json": wheels_json(runtime),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the committed lock instead of writing")
    ap.add_argument("--pip", default=str(Path(sys.executable).parent / "pip"))
    args = ap.parse_args()
    files = generate(args.pip)
    stale = [
        name for name, text in files.items() if not (LOCK_DIR / name).exists() or (LOCK_DIR / name).read_text() != text
    ]
    if args.check:
        if stale:
            sys.exit(f"lock is stale: {', '.join(stale)} differ; run tools/relock.py")
        print("lock is current")
        return
    for name, text in files.items():
        (LOCK_DIR / name).write_text(text)
    print(f"wrote {', '.join(files)} ({len(stale)} changed)")


if __name__ == "__main__":
    main()
