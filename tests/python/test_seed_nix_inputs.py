"""scripts/seed-nix-inputs: each route that puts the pinned nixpkgs lib in the Nix store.

Every test runs the real script against a private Nix store (NIX_REMOTE=<tmp dir>), so the routes
are taken from a store that lacks the input, whatever the machine's own store holds. The archive
and directory are made from the copy scripts/setup put in the machine's store. The fetch route
needs the source host, which these machines cannot reach: only its failure is exercised here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from fixtures.common import REPO

SCRIPT = REPO / "scripts" / "seed-nix-inputs"
PROBE = "let l = import ./tests/nix/nixpkgs-lib.nix { }; in { inherit (l) present storePath; }"
NIX_CONFIG = "experimental-features = nix-command flakes"


def run_seed(store: Path, *args: str, source: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NIXPKGS_LIB_SOURCE"}
    env["NIX_REMOTE"] = str(store)
    if source is not None:
        env["NIXPKGS_LIB_SOURCE"] = str(source)
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=900)


def in_store(store: Path, path: str) -> bool:
    env = dict(os.environ, NIX_REMOTE=str(store), NIX_CONFIG=NIX_CONFIG)
    return subprocess.run(["nix", "path-info", path], capture_output=True, env=env).returncode == 0


@pytest.fixture(scope="module")
def pinned_lib() -> tuple[Path, str]:
    """The pinned lib in the machine's store (scripts/setup seeded it) and its store path."""
    if not shutil.which("nix-instantiate"):
        pytest.fail("nix-instantiate not found: run scripts/setup (it installs nix-bin)", pytrace=False)
    probe = subprocess.run(
        ["nix-instantiate", "--readonly-mode", "--eval", "--strict", "--json", "-E", PROBE],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, NIX_CONFIG=NIX_CONFIG),
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    if not found["present"]:
        pytest.fail(f"{found['storePath']} is not in the store: run scripts/setup first", pytrace=False)
    return Path(found["storePath"]), str(found["storePath"])


@pytest.fixture
def source_tree(pinned_lib: tuple[Path, str], tmp_path: Path) -> Path:
    """A writable copy of the pinned revision's tree, as `git archive --prefix=source/` unpacks."""
    tree = tmp_path / "copy" / "source"
    shutil.copytree(pinned_lib[0], tree, symlinks=True)
    for path in [tree, *tree.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)
    return tree


def archive_of(tree: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(tree, arcname="source")
    return dest


def test_archive_is_checked_and_added_then_found_in_the_store(
    pinned_lib: tuple[Path, str], source_tree: Path, tmp_path: Path
) -> None:
    store, want = tmp_path / "store", pinned_lib[1]
    archive = archive_of(source_tree, tmp_path / "nixpkgs.lib.tar.gz")

    first = run_seed(store, source=archive)
    assert first.returncode == 0, first.stderr
    assert "nixpkgs-lib: source: added github:nix-community/nixpkgs.lib/" in first.stdout
    assert f"$NIXPKGS_LIB_SOURCE={archive} as {want}" in first.stdout
    assert in_store(store, want)

    again = run_seed(store)  # no source given: the store route
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"[seed-nix-inputs] nixpkgs-lib: store: already in the store as {want}"


def test_unpacked_directory_is_accepted(pinned_lib: tuple[Path, str], source_tree: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    # the directory holding `source/`, as the archive unpacks: its only top-level directory is used
    done = run_seed(store, source=source_tree.parent)
    assert done.returncode == 0, done.stderr
    assert ": source: added " in done.stdout
    assert in_store(store, pinned_lib[1])


def test_archive_with_another_hash_is_refused_and_nothing_added(
    pinned_lib: tuple[Path, str], source_tree: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    (source_tree / "default.nix").write_text('{ }: throw "not the locked lib"\n')
    archive = archive_of(source_tree, tmp_path / "tampered.tar.gz")

    refused = run_seed(store, source=archive)
    assert refused.returncode == 1
    assert f"$NIXPKGS_LIB_SOURCE={archive} is not github:nix-community/nixpkgs.lib/" in refused.stderr
    assert "flake.lock's narHash is sha256-0iaTCZDEORJeWamOjfDZaoZZx686f7QO5oL3ynmj+ew=" in refused.stderr
    assert "nothing was added" in refused.stderr
    assert not in_store(store, pinned_lib[1])


def test_missing_source_path_names_the_variable(tmp_path: Path) -> None:
    refused = run_seed(tmp_path / "store", source=tmp_path / "absent.tar.gz")
    assert refused.returncode == 1
    assert f"$NIXPKGS_LIB_SOURCE={tmp_path / 'absent.tar.gz'} does not exist" in refused.stderr


def test_nothing_available_says_what_to_provide(tmp_path: Path) -> None:
    # A revision that exists nowhere: Nix's fetch fails with or without access to the source host.
    lock = json.loads((REPO / "flake.lock").read_text())
    lock["nodes"]["nixpkgs-lib"]["locked"]["rev"] = "0" * 40
    lock["nodes"]["nixpkgs-lib"]["locked"]["narHash"] = "sha256-" + "A" * 43 + "="
    lock_file = tmp_path / "flake.lock"
    lock_file.write_text(json.dumps(lock))

    failed = run_seed(tmp_path / "store", "--lock", str(lock_file))
    assert failed.returncode == 1
    assert "nixpkgs-lib (github:nix-community/nixpkgs.lib/000000000000) is not in the Nix store" in failed.stderr
    assert "$NIXPKGS_LIB_SOURCE is not set, and Nix could not fetch it (error:" in failed.stderr
    assert "Provide it: NIXPKGS_LIB_SOURCE=<a .tar.gz of that revision, or its unpacked directory>" in failed.stderr
