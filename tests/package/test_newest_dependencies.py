"""The wheel as a new user gets it today: a fresh venv (no system packages), `pip install
--upgrade` of the wheel with its aws extra, so pip picks the newest release of every dependency
that the wheel allows. Each command that succeeds must say nothing on stderr: a warning from a
newer dependency (cryptography's deprecations through asyncssh, a boto3 notice ...) is the first
thing a user would see.

The SSH side is benchmarks.simserver (one asyncssh server on loopback that plays every host and
answers the mesh probe as a configured host would), run by this interpreter; only the fleet under
test runs in the new venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden" / "mesh_report.json"


@pytest.fixture(scope="module")
def newest_venv(built_wheel, tmp_path_factory) -> Path:
    """The venv's bin/ directory; pip's cache stays in the test's temporary directory."""
    venv = tmp_path_factory.mktemp("newest") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    cache = venv.parent / "pip-cache"
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade",
                           "--upgrade-strategy", "eager", "--cache-dir", str(cache),
                           f"{built_wheel}[aws]"],
                          capture_output=True, text=True, timeout=600,
                          # no PYTHONPATH: the tree's fleet_isatap.egg-info would count as installed
                          env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONPATH": ""})
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin"


def installed(bin_dir: Path) -> str:
    listed = subprocess.run([str(bin_dir / "python"), "-m", "pip", "list", "--format", "freeze"],
                            capture_output=True, text=True, timeout=60)
    return " ".join(listed.stdout.split())


def fleet(bin_dir: Path, *args: str, cwd: Path, env: dict[str, str] | None = None,
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / "fleet"), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": "", **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def simulated_hosts(tmp_path_factory):
    """benchmarks.simserver playing 3 hosts, and their inventory."""
    sys.path.insert(0, str(REPO))
    import fleet.ssh  # noqa: F401, I001  (first: its filter of asyncssh's deprecation warnings)
    from benchmarks.simulate import SimServerProcess, write_inventory

    work = tmp_path_factory.mktemp("sim")
    server = SimServerProcess(work, "none", 0.0, 3)
    try:
        yield write_inventory(work / "inventory", 3, server.port, work / "keys")
    finally:
        server.stop()


def test_the_installed_cli_with_the_newest_dependencies_is_quiet(newest_venv, simulated_hosts, tmp_path):
    versions = installed(newest_venv)
    where = subprocess.run([str(newest_venv / "python"), "-c", "import fleet, boto3; print(fleet.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": ""},
                           timeout=60)
    assert where.returncode == 0 and where.stdout.startswith(str(newest_venv.parent)), where.stderr
    report, page = tmp_path / "mesh.json", tmp_path / "mesh.html"
    commands = [
        ("--version",),
        ("run", "--help"),
        ("tasks",),
        ("inventory", "-i", str(simulated_hosts)),
        ("run", "mesh", "-i", str(simulated_hosts), "--count", "2", "--json", str(report),
         "--heatmap", str(page), "--no-progress"),
        ("report", str(report), "--heatmap", str(tmp_path / "again.svg"), "--max-loss-pct", "0"),
    ]
    for args in commands:
        done = fleet(newest_venv, *args, cwd=tmp_path)
        assert (done.returncode, done.stderr) == (0, ""), (
            f"fleet {' '.join(args)}: exit {done.returncode}, stderr:\n{done.stderr}\nwith {versions}")
    document = json.loads(report.read_text())
    assert document["verdict"]["status"] == "ok" and document["summary"]["ok"] == 6  # SSH really ran
    assert page.stat().st_size > 0
    # a saved run that is not ok: exit 1, and still nothing on stderr (the text says why)
    golden = fleet(newest_venv, "report", str(GOLDEN), cwd=tmp_path)
    assert (golden.returncode, golden.stderr) == (1, ""), golden.stderr
    assert golden.stdout.startswith("mesh NOT OK")


def test_the_installed_console_script_completes_task_names(newest_venv, tmp_path):
    out = tmp_path / "candidates"
    line = "fleet run mesh --cou"
    done = fleet(newest_venv, cwd=tmp_path, env={
        "_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line, "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out)})
    assert (done.returncode, done.stderr) == (0, "")
    assert out.read_text().split() == ["--count"]
    # the marker argcomplete's global completion looks for, in the entry point's module
    head = "import fleet.cli, pathlib; print(pathlib.Path(fleet.cli.__file__).read_text()[:1024])"
    marker = subprocess.run([str(newest_venv / "python"), "-c", head],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60,
                            env={**os.environ, "PYTHONPATH": ""})
    assert "PYTHON_ARGCOMPLETE_OK" in marker.stdout
