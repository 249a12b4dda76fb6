"""Every shared library the locked wheels' ELF files need is inside their own wheel or comes from the Nix
package's inputs, so `autoPatchelfHook` has what it needs when nix/packages/superset-async.nix is built.

Nix cannot build the package on these machines, so this reads what autoPatchelfHook would read: the
DT_NEEDED entries (Debian's `readelf -d`, binutils) of every ELF file (extension modules, vendored
libraries, executables) that the locked distributions install. The files come from the project's
.venv, i.e. the cp311 x86_64 wheels of python/lock; the package installs the cp312 wheels of the same
distributions and versions (another ABI tag, built by the same manylinux tooling from the same sources).
The aarch64 wheels are not checked here.

How autoPatchelfHook resolves a DT_NEEDED name (nixpkgs pkgs/by-name/au/auto-patchelf): a file of that
name under the package's own output (every `*.so*` of the environment, so a library a wheel vendors in
e.g. numpy.libs/ or pillow.libs/), a library of stdenv's libc (taken as found without any input), or a
library in the lib/ of a buildInputs entry. Here a vendored name counts only inside its own distribution
or a distribution it requires, which is stricter: today every one resolves in its own distribution
(pyarrow ships libarrow*.so.1801 in pyarrow/ itself).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import pytest
from fixtures.common import REPO
from packaging.requirements import Requirement

PACKAGE = REPO / "nix" / "packages" / "superset-async.nix"
TARGET = "cp312-x86_64-linux"  # the wheels nix/packages/superset-async.nix installs on x86_64-linux
MACHINE = "Advanced Micro Devices X86-64"  # readelf's name of TARGET's ELF machine
INSTALL_HINT = "install binutils (scripts/setup does: apt-get install binutils)"

LIBC = "stdenv's libc"
# soname -> what provides it in nixpkgs. Keep in sync with buildInputs in nix/packages/superset-async.nix
# (test_table_and_build_inputs_agree holds them equal). LIBC: glibc's lib/, which auto-patchelf takes
# from $NIX_BINTOOLS/nix-support/orig-libc and accepts with no input. No libcrypt.so.1 here: glibc 2.39
# dropped it and nixpkgs has it in libxcrypt. stdenv.cc.cc.lib is gcc's `lib` output.
LIBRARIES: Mapping[str, str] = {
    **dict.fromkeys(
        [
            "libc.so.6",
            "libm.so.6",
            "libmvec.so.1",
            "libpthread.so.0",
            "libdl.so.2",
            "librt.so.1",
            "libutil.so.1",
            "libresolv.so.2",
            "libanl.so.1",
            "ld-linux-x86-64.so.2",
            "ld-linux-aarch64.so.1",
        ],
        LIBC,
    ),
    **dict.fromkeys(["libstdc++.so.6", "libgcc_s.so.1", "libgomp.so.1", "libatomic.so.1"], "stdenv.cc.cc.lib"),
    "libz.so.1": "zlib",
}


@dataclass(frozen=True)
class ElfFile:
    """One ELF file a locked distribution installs, and the sonames it names in DT_NEEDED."""

    dist: str  # normalized distribution name
    record: str  # its path as the distribution's RECORD names it
    machine: str  # auto-patchelf skips files built for another machine (selenium ships an arm64 binary)
    needed: tuple[str, ...]
    dlopen_note: bool  # has a .note.dlopen section, which auto-patchelf also resolves


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_wheels() -> dict[str, dict[str, str]]:
    """normalized name -> the lock's entry (filename, version) for TARGET."""
    files = json.loads((REPO / "python" / "lock" / "wheels.json").read_text())["targets"][TARGET]
    return {normalize(f["name"]): f for f in files}


def build_inputs(text: str) -> list[str]:
    """The entries of the derivation's `buildInputs = [ ... ];` list (not nativeBuildInputs)."""
    match = re.search(r"^\s*buildInputs\s*=\s*\[(.*?)\];", text, re.MULTILINE | re.DOTALL)
    assert match, f"{PACKAGE.name}: no plain `buildInputs = [ ... ];` list to read"
    return re.sub(r"#[^\n]*", "", match.group(1)).split()


def function_arguments(text: str) -> set[str]:
    """The names the package function takes (`{ lib, stdenv, ... }:` at the top of the file)."""
    match = re.search(r"^\{(.*?)\}:", text, re.MULTILINE | re.DOTALL)
    assert match, f"{PACKAGE.name}: no function argument set"
    return {a.split("?")[0].strip() for a in re.sub(r"#[^\n]*", "", match.group(1)).split(",") if a.strip()}


def readelf() -> str:
    path = shutil.which("readelf")
    if path is None:
        pytest.fail(f"readelf not found: {INSTALL_HINT}")
    return path


def read_elf_files(files: Mapping[Path, tuple[str, str]]) -> list[ElfFile]:
    """Machine, DT_NEEDED and section names of `files` (path -> (dist, record path)), one readelf run."""
    proc = subprocess.run([readelf(), "-W", "-h", "-d", "-S", *map(str, files)], capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stderr.strip(), f"readelf failed: {proc.stderr[-2000:]}"
    needed: dict[str, list[str]] = {}
    machines: dict[str, str] = {}
    notes: set[str] = set()
    current = ""
    for line in proc.stdout.splitlines():
        if line.startswith("File: "):
            current = line.removeprefix("File: ")
            needed[current] = []
        elif m := re.match(r"\s+Machine:\s+(.+)$", line):
            machines[current] = m.group(1).strip()
        elif m := re.search(r"\(NEEDED\)\s+Shared library: \[(.+)\]", line):
            needed[current].append(m.group(1))
        elif re.search(r"\]\s+\.note\.dlopen\s", line):
            notes.add(current)
    by_name = {str(p): v for p, v in files.items()}
    assert set(needed) == set(by_name), "readelf did not report every file"
    return [ElfFile(*by_name[p], machines[p], tuple(n), p in notes) for p, n in needed.items()]


def requirement_closure(dist: str, requires: Mapping[str, set[str]]) -> set[str]:
    seen, todo = {dist}, [dist]
    while todo:
        for dep in requires.get(todo.pop(), set()) - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def missing_libraries(
    elves: Iterable[ElfFile],
    requires: Mapping[str, set[str]],
    libraries: Mapping[str, str],
    inputs: Iterable[str],
    wheels: Mapping[str, dict[str, str]],
) -> list[str]:
    """One line per DT_NEEDED entry that autoPatchelfHook could not satisfy, naming the fix."""
    elves = [elf for elf in elves if elf.machine == MACHINE]
    # what auto-patchelf's cache holds: file names matching *.so* (nixpkgs auto-patchelf populate_cache)
    provided: dict[str, set[str]] = {}
    for elf in elves:
        name = Path(elf.record).name
        if fnmatch(name, "*.so*"):
            provided.setdefault(name, set()).add(elf.dist)
    inputs = set(inputs)
    problems = []
    for elf in elves:
        where = f"{wheels[elf.dist]['filename']}: {elf.record}"
        if elf.dlopen_note:
            problems.append(f"{where} has a .note.dlopen section (libraries auto-patchelf also resolves): check it")
        for soname in elf.needed:
            if provided.get(soname, set()) & requirement_closure(elf.dist, requires):
                continue
            attribute = libraries.get(soname)
            if attribute == LIBC or attribute in inputs:
                continue
            if attribute is not None:
                problems.append(
                    f"{where} needs {soname}, from {attribute}: add {attribute} to buildInputs in {PACKAGE.name}"
                )
            else:
                problems.append(
                    f"{where} needs {soname}: not in the wheel nor from the package's inputs; add the nixpkgs "
                    f"attribute that provides it to buildInputs (and the arguments) in {PACKAGE.name} and to "
                    f"LIBRARIES in {Path(__file__).name}"
                )
    return problems


@pytest.fixture(scope="module")
def wheels() -> dict[str, dict[str, str]]:
    return locked_wheels()


@pytest.fixture(scope="module")
def installed(wheels: dict[str, dict[str, str]]) -> dict[str, md.Distribution]:
    """The locked distributions as .venv has them, at the lock's versions."""
    dists = {normalize(d.metadata["Name"]): d for d in md.distributions()}
    stale = [
        f"{name}=={entry['version']} (.venv has {dists[name].version if name in dists else 'none'})"
        for name, entry in wheels.items()
        if name not in dists or dists[name].version != entry["version"]
    ]
    assert not stale, f".venv does not match python/lock (run scripts/setup): {', '.join(stale)}"
    return {name: dists[name] for name in wheels}


@pytest.fixture(scope="module")
def elves(installed: dict[str, md.Distribution]) -> list[ElfFile]:
    files: dict[Path, tuple[str, str]] = {}
    for name, dist in installed.items():
        for record in dist.files or []:
            path = Path(str(dist.locate_file(record)))
            if path.is_file() and not path.is_symlink():
                with path.open("rb") as stream:
                    if stream.read(4) == b"\x7fELF":
                        files[path] = (name, str(record))
    return read_elf_files(files)


def test_every_needed_library_is_in_the_wheel_or_a_package_input(
    wheels: dict[str, dict[str, str]], installed: dict[str, md.Distribution], elves: list[ElfFile]
) -> None:
    # each wheel built for an ABI (cp3xx/abi3) must show its ELF files: else RECORD was not read
    compiled = {name for name, e in wheels.items() if re.search(r"-(cp3\d+|abi3)-[^-]+\.whl$", e["filename"])}
    assert compiled - {e.dist for e in elves} == set(), "compiled wheels without ELF files in .venv"
    requires = {
        name: {
            normalize(r.name)
            for r in map(Requirement, dist.requires or [])
            if normalize(r.name) in installed and (r.marker is None or r.marker.evaluate({"extra": ""}))
        }
        for name, dist in installed.items()
    }
    inputs = build_inputs(PACKAGE.read_text())
    problems = missing_libraries(elves, requires, LIBRARIES, inputs, wheels)
    assert not problems, "autoPatchelfHook would miss:\n" + "\n".join(problems)


def test_table_and_build_inputs_agree() -> None:
    text = PACKAGE.read_text()
    inputs = build_inputs(text)
    wanted = set(LIBRARIES.values()) - {LIBC}
    assert set(inputs) == wanted, (
        f"buildInputs of {PACKAGE.name} is {sorted(inputs)}; LIBRARIES in {Path(__file__).name} names "
        f"{sorted(wanted)}: keep them equal"
    )
    arguments = function_arguments(text)
    assert {a.split(".")[0] for a in inputs} <= arguments, f"{PACKAGE.name} takes only {sorted(arguments)}"


def test_a_missing_library_is_named_with_its_fix() -> None:
    wheels = {"demo": {"filename": "demo-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"}}
    elves = [
        ElfFile("demo", "demo/_ext.so", MACHINE, ("libc.so.6", "libz.so.1", "libdemo-1a2b.so.1", "libffi.so.8"), False),
        ElfFile("demo", "demo.libs/libdemo-1a2b.so.1", MACHINE, ("libm.so.6",), False),
        ElfFile("demo", "demo/arm64/tool", "AArch64", ("libssl.so.3",), False),  # skipped like auto-patchelf
    ]
    problems = missing_libraries(elves, {}, LIBRARIES, ["stdenv.cc.cc.lib"], wheels)
    assert problems == [
        f"{wheels['demo']['filename']}: demo/_ext.so needs libz.so.1, from zlib: add zlib to buildInputs "
        f"in {PACKAGE.name}",
        f"{wheels['demo']['filename']}: demo/_ext.so needs libffi.so.8: not in the wheel nor from the package's "
        f"inputs; add the nixpkgs attribute that provides it to buildInputs (and the arguments) in {PACKAGE.name} "
        f"and to LIBRARIES in {Path(__file__).name}",
    ]
