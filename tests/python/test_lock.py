"""The hashed lock installs into a fresh virtualenv with `pip check` clean, and names no host; the lock
tool refuses to take a package older than plain pip would (tools/relock.py `downgrades`)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from fixtures.common import REPO

LOCK = REPO / "python" / "lock"
TARGETS = {"cp311-x86_64-linux", "cp311-aarch64-linux", "cp312-x86_64-linux", "cp312-aarch64-linux"}
# The fixes that make Superset 6.1 work (field notes): the lock must keep them.
REQUIRED_PINS = {
    "apache-superset": "6.1.0",
    "celery": "5.6.3",
    "kombu": "5.6.2",
    "flask-caching": "2.3.1",
    "clickhouse-connect": "0.15.1",
    "flask": "2.3.3",
    "flask-sqlalchemy": "2.5.1",
}


def parse_requirements(path: Path) -> dict[str, tuple[str, set[str]]]:
    """name -> (version, sha256 hashes) of a --require-hashes requirements file."""
    text = path.read_text().replace("\\\n", " ")
    pins = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = re.match(r"^([A-Za-z0-9_.\-]+)==([^ ;]+)", line).groups()  # type: ignore[union-attr]
            pins[name] = (version, set(re.findall(r"--hash=sha256:([0-9a-f]{64})", line)))
    return pins


def test_lock_pins_the_working_set_with_hashes_and_no_addresses() -> None:
    runtime = parse_requirements(LOCK / "requirements.txt")
    for name, version in REQUIRED_PINS.items():
        assert runtime[name][0] == version, name
    assert "rich" in runtime and "cachetools" in runtime
    assert all(hashes for _, hashes in runtime.values())
    for path in LOCK.iterdir():
        text = path.read_text()
        assert "://" not in text, f"{path.name} names an address"
        assert not re.search(r"--(extra-)?index-url|--find-links", text), path.name


def test_wheels_json_matches_the_requirements_for_every_target() -> None:
    runtime = parse_requirements(LOCK / "requirements.txt")
    targets = json.loads((LOCK / "wheels.json").read_text())["targets"]
    assert set(targets) == TARGETS
    for key, files in targets.items():
        names = {f["name"] for f in files}
        assert names == set(runtime), key
        for f in files:
            version, hashes = runtime[f["name"]]
            assert f["version"] == version and f["sha256"] in hashes, (key, f)
            assert f["filename"].endswith((".whl", ".tar.gz", ".zip")), f
            if "-cp3" in f["filename"]:
                tag = key.split("-")[0]
                assert f"-{tag}-" in f["filename"] or "-abi3-" in f["filename"], (key, f["filename"])


def test_lock_installs_into_a_fresh_venv_and_pip_check_is_clean(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = str(venv / "bin" / "pip")
    install = subprocess.run(
        [pip, "install", "--quiet", "--require-hashes", "-r", str(LOCK / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    check = subprocess.run([pip, "check"], capture_output=True, text=True)
    assert check.returncode == 0 and "No broken requirements found" in check.stdout, check.stdout
    versions = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import superset, celery, kombu, redis; print(celery.__version__, kombu.__version__)",
        ],
        capture_output=True,
        text=True,
    )
    assert versions.stdout.split() == ["5.6.3", "5.6.2"], versions.stderr


def relock_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("relock", REPO / "tools" / "relock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["relock"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_relock_refuses_what_prefer_binary_would_silently_downgrade() -> None:
    relock = relock_module()

    def resolved(*found: tuple[str, str, bool]) -> dict[str, object]:
        return {name: relock.Pinned(name, version, [], sdist) for name, version, sdist in found}

    # What happened: --prefer-binary took wtforms-json 0.3.4 (newest wheel) where plain pip takes 0.3.5 (sdist).
    locked = resolved(("wtforms-json", "0.3.4", False), ("celery", "5.6.3", False), ("odfpy", "1.4.1", True))
    plain = resolved(("wtforms-json", "0.3.5", True), ("celery", "5.6.3", False), ("odfpy", "1.4.1", True))
    assert [str(d) for d in relock.downgrades(locked, plain, {})] == [
        "wtforms-json: lock 0.3.4, plain pip 0.3.5 (0.3.5 is published as a source distribution only; "
        "--prefer-binary took the newest wheel)"
    ]
    # Held back with a wheel available (another package's choice); versions compare as versions, not text.
    locked = resolved(("vine", "5.1.0", False), ("redis", "5.3.1", False), ("newer", "2.0", False))
    plain = resolved(("vine", "5.10.0", False), ("redis", "5.3.1", False), ("newer", "1.9", False))
    (held,) = relock.downgrades(locked, plain, {})
    assert (held.name, held.locked, held.plain) == ("vine", "5.1.0", "5.10.0")
    assert "has a wheel" in held.why
    # A named pin of exactly the locked version, with its reason, is a deliberate choice.
    pins = relock.named_pins("vine==5.1.0   # 5.10 breaks X\nkombu==5.6.2\nredis>=5  # a range, not a pin\n")
    assert pins == {"vine": "5.1.0"}
    assert relock.downgrades(locked, plain, pins) == []
    assert relock.downgrades(locked, plain, {"vine": "5.0.0"}) == [held]  # a pin of another version does not


def test_the_committed_requirements_in_names_its_pins_with_reasons() -> None:
    pins = relock_module().named_pins((LOCK / "requirements.in").read_text())
    assert pins["wtforms-json"] == "0.3.5"
    assert pins["celery"] == "5.6.3" and pins["flask-caching"] == "2.3.1"
