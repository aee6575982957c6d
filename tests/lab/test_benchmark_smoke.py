"""The benchmark keeps working: `python -m benchmarks.run --smoke` on a 4-host namespace bed.

Not a performance test: nothing here looks at a time. It checks that the benchmark finishes,
prints its table with every tool on every job, and that every tool got every pair (every host, for
the command job; every guest, for setup) OK. Needs root, the bed's tools and the peers' packages
(`benchmarks/install`); it skips with the reason otherwise (and in CI a skip fails the run).
"""

import importlib.util
import json
import subprocess
import sys

import pytest
from conftest import REPO, need_root_and

if str(REPO) not in sys.path:  # `benchmarks` is a directory of the repository, not installed
    sys.path.insert(0, str(REPO))

# The namespace bed's sshds, and the QEMU lab for the setup job (2 guests): `lab` by its folder,
# `sshd` as well.
pytestmark = [pytest.mark.sshd,
              need_root_and("ip", "/usr/sbin/sshd", "ssh", "ssh-keygen", "fping", "ping", "unshare",
                            "xargs")]

PEER_PACKAGES = {"ansible": "ansible-core", "nornir_paramiko": "nornir-paramiko",
                 "pssh": "parallel-ssh", "psutil": "psutil"}


def missing_packages() -> list[str]:
    return [package for module, package in PEER_PACKAGES.items()
            if importlib.util.find_spec(module) is None]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    missing = missing_packages()
    if missing:
        pytest.skip(f"the benchmark's peers are not installed ({', '.join(missing)}): "
                    "run benchmarks/install")
    report = tmp_path_factory.mktemp("bench") / "smoke.json"
    workdir = tmp_path_factory.mktemp("bench-work")
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", "--smoke", "--json", str(report),
                           "--workdir", str(workdir)],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    from benchmarks.measure import processes_with

    # A warm tool's daemon or ssh masters still running
    from benchmarks.peers.openssh_persist import CONTROL_PREFIX

    left = processes_with(str(workdir)) + processes_with(CONTROL_PREFIX)
    return done, json.loads(report.read_text()) if report.exists() else None, left


def test_smoke_run_finishes_with_every_tool_all_ok(smoke):
    done, document, left = smoke
    assert left == [], "warm tools' helpers outlived the benchmark"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert document is not None
    assert document["skipped"] == [], document["skipped"]
    from benchmarks.peers import peer_modules

    tools = list(peer_modules())
    jobs = ["mesh-fping", "mesh-ping", "command"]
    rows = {(row["job"], row["tool"]): row for row in document["summary"]}
    for job in jobs:
        for tool in tools:
            row = rows.get((job, tool))
            assert row is not None, f"{tool} did not run {job}"
            assert row["ok_min"] == row["expected"], (job, tool, row["errors"])
    assert rows[("mesh-fping", "fleet")]["expected"] == 12
    for tool in ("fleet", "asyncssh script"):
        row = rows[("setup", tool)]
        assert row["ok_min"] == row["expected"] == 2, row["errors"]


def test_smoke_table_names_every_tool_and_the_stand_in_addresses(smoke):
    done, _, _ = smoke
    from benchmarks.peers import peer_modules

    table = done.stdout
    assert "median s" in table and "x fleet" in table
    for tool in peer_modules():
        assert tool in table, tool
    assert "stand-ins" in table and "plain veth" in table
