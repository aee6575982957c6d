from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from fleet.inventory import load_inventory

REPO = Path(__file__).resolve().parent.parent


TESTS = Path(__file__).resolve().parent
# Each tier is a folder of tests/, and its marker: `-m` and a folder select the same tests.
TIERS = {"unit": "unit", "inproc": "inproc", "package": "package", "nsbed": "sshd", "lab": "lab"}


def pytest_collection_modifyitems(config, items):
    """Mark every test with its folder's tier; a test outside the tiers' folders is an error (a
    new file lands in one of them, so that selecting by folder or by marker stays the same)."""
    for item in items:
        try:
            folder = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:
            continue  # not under tests/ (a path given on the command line)
        if folder not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in a tier's folder, one of "
                                    f"tests/{{{','.join(TIERS)}}}")
        item.add_marker(TIERS[folder])


def load_yaml(path: Path) -> Any:
    """Load YAML the way nornir does (ruamel.yaml, safe)."""
    return YAML(typ="safe").load(path.read_text())


def write_inventory(directory: Path, hosts: str, groups: str | None = None,
                    defaults: str | None = None) -> Path:
    """Write an inventory directory from YAML texts; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hosts.yaml").write_text(hosts)
    if groups is not None:
        (directory / "groups.yaml").write_text(groups)
    if defaults is not None:
        (directory / "defaults.yaml").write_text(defaults)
    return directory


@pytest.fixture
def make_hosts(tmp_path):
    """Build FleetHosts from a compact spec: {name: ipv4}, sharing one prefix."""
    def make(spec: dict[str, str], prefix: str = "fd00:5efe:1ab::/64"):
        hosts = "".join(f"{name}:\n  hostname: {ipv4}\n" for name, ipv4 in spec.items())
        directory = write_inventory(tmp_path / "inv", hosts,
                                    defaults=f"data:\n  isatap_prefix: '{prefix}'\n")
        return load_inventory(directory).hosts
    return make


def need_root_and(*commands: str) -> pytest.MarkDecorator:
    missing = [c for c in commands if shutil.which(c) is None]
    reason = "needs root" if os.geteuid() != 0 else f"needs {', '.join(missing)}" if missing else ""
    return pytest.mark.skipif(bool(reason), reason=reason)


def wait_for(condition, what: str, timeout: float = 30, every: float = 0.1):
    """Poll `condition()` until it returns something true (returned) or `timeout` seconds pass
    (the test fails naming `what`): wait for a state instead of sleeping a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def pytest_sessionfinish(session, exitstatus):
    """In CI nothing may skip: CI installs every package and runs as root."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") == "true" and skipped and exitstatus == 0:
        reporter.write_line(f"CI=true: {skipped} test(s) skipped; in CI everything must run",
                            red=True)
        session.exitstatus = 1


@pytest.fixture
def inprocess_fleet(tmp_path, capsys):
    """An InProcessFleet (tests/inprocess.py): SSH hosts with stand-ins, and the CLI run here."""
    from inprocess import InProcessFleet

    fleet = InProcessFleet(tmp_path, capsys)
    try:
        yield fleet
    finally:
        fleet.close()


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory):
    """The wheel `pip wheel .` builds from the tree, once per session (every test of the
    installed package shares it)."""
    import subprocess
    import sys

    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(dist), str(REPO)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = dist.glob("fleet_isatap-*.whl")
    return wheel


@pytest.fixture(scope="session")
def installed_venv(tmp_path_factory, built_wheel):
    """The wheel installed into a fresh venv (dependencies from this interpreter's
    site-packages, so nothing but the build backend is downloaded): what users get, entry
    points included. Returns its python."""
    import subprocess
    import sys

    wheel = built_wheel
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True,
                   timeout=120)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "--force-reinstall",
                           str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin" / "python"


from motoserver import aws_env, moto_endpoint  # noqa: E402,F401  (fixtures: a moto server on loopback)
