"""The NixOS module's units under a real systemd: tests/nixos/*.nix run unchanged in nspawn containers.

Each VM test's nodes are evaluated and built offline (tests/nix/harness/node.nix) and booted with
systemd-nspawn (fixtures/nspawn.py); its testScript runs through the driver adapter
(fixtures/nixos_driver.py). Secrets are generated inside the container by the node's own
`test-secrets` unit: root-owned, 0600, outside the services' reach; the services see them only
through LoadCredential=. The units run as their own system users with the module's full hardening.
What this proves and what only a NixOS VM run proves: docs/nixos.md.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fixtures.common import REPO
from fixtures.nixos_driver import Machine, script_globals
from fixtures.nspawn import Container, Node, NodeNetwork, boot, build_nodes

ARTEFACTS = Path(os.environ.get("SUPERSET_ASYNC_ARTIFACTS", REPO / ".artifacts")) / "nixos"


@pytest.fixture
def log_file(request: pytest.FixtureRequest) -> Iterator[Path]:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{request.node.name}.log"
    path.write_text("")
    yield path


def run_vm_test(test: str, tmp_path: Path, log_file: Path) -> None:
    nodes = build_nodes(test)
    started = time.monotonic()

    def log(line: str) -> None:
        with log_file.open("a") as out:
            out.write(f"[{time.monotonic() - started:7.1f}s] {line}\n")

    network = NodeNetwork(f"{os.getpid()}", sorted(nodes)) if len(nodes) > 1 else None
    boots = itertools.count(1)

    def booter(node: Node) -> Callable[[], Container]:
        # a fresh root for each boot: a node started again after shutdown() or crash() boots anew
        return lambda: boot(node, tmp_path / f"{node.name}-{next(boots)}", network)

    def cable(name: str) -> Callable[[bool], None]:
        return lambda unplugged: network.set_link(name, not unplugged) if network else None

    machines = {name: Machine(name, booter(node), log, cable(name)) for name, node in nodes.items()}
    try:
        if network:
            network.create()
        script = next(iter(nodes.values())).test_script
        try:
            exec(compile(script, f"tests/nixos/{test}.nix testScript", "exec"), script_globals(machines, log))  # noqa: S102
        except BaseException:
            for name, m in machines.items():
                if not m.booted:
                    continue
                for unit in (
                    "superset-async-init",
                    "superset-async-web",
                    "superset-async-worker",
                    "superset-async-worker-interactive",  # single-host's SQL Lab lane
                    "superset-async-beat",
                ):
                    _, out = m.execute(f"journalctl --no-pager -n 60 -u {unit}.service 2>&1")
                    log(f"{name}: journal of {unit}:\n{out}")
            raise
    finally:
        for m in machines.values():
            if m.container is not None:
                m.container.stop()
        if network:
            network.remove()


def test_single_host_vm_test_script_runs_unchanged_under_systemd(tmp_path: Path, log_file: Path) -> None:
    run_vm_test("single-host", tmp_path, log_file)


def test_scale_out_vm_test_script_runs_on_four_containers_joined_by_a_test_network(
    tmp_path: Path, log_file: Path
) -> None:
    run_vm_test("scale-out", tmp_path, log_file)
