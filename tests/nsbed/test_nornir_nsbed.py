"""fleet from Nornir against real OpenSSH servers in network namespaces: the examples run as
users run them (an installed copy, the plugin found by its entry point), and the task functions'
Results read against the hosts themselves.

The namespaces share this machine's kernel; where it lacks sit (as here), setup fails per host in
preflight, and the mesh measures the hosts' stand-in IPv6 addresses on plain veths.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from conftest import REPO, need_root_and
from nornir.core.exceptions import NornirExecutionError

import fleet.nornir
from fleet.inventory import load_inventory
from fleet.tunnel.preflight import FACTS_SCRIPT, parse_facts

pytestmark = [need_root_and("ip", "/usr/sbin/sshd", "ssh-keygen", "ping", "unshare")]

KERNEL_HAS_SIT = parse_facts(subprocess.run(["sh", "-c", FACTS_SCRIPT], capture_output=True,
                                            text=True).stdout).sit != "missing"
HOSTS = ["h1", "h2", "h3"]


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    from fleet.lab.nsbed import NamespaceBed

    with NamespaceBed(len(HOSTS), workdir=tmp_path_factory.mktemp("nsbed")) as bed:
        yield bed


def example(python, name, *args, cwd):
    """Run examples/NAME with the installed copy's python, outside the source tree."""
    return subprocess.run([str(python), str(REPO / "examples" / name), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=180,
                          env={**os.environ, "PYTHONPATH": ""})


def kernel_address(bed, name):
    """The host's IPv6 address as its kernel has it (ip -j), not as fleet computes it."""
    host = next(h for h in bed.hosts if h.name == name)
    out = subprocess.run(["ip", "-n", host.netns, "-j", "-6", "addr", "show", "dev", "eth0",
                          "scope", "global"], capture_output=True, text=True, check=True).stdout
    (address,) = [a["local"] for link in json.loads(out) for a in link["addr_info"] if "local" in a]
    return address


def has_sit1(bed, name):
    host = next(h for h in bed.hosts if h.name == name)
    return subprocess.run(["ip", "-n", host.netns, "link", "show", "dev", "sit1"],
                          capture_output=True).returncode == 0


def test_the_inventory_example_lists_the_filtered_hosts(bed, installed_venv, tmp_path):
    done = example(installed_venv, "nornir_inventory.py", bed.inventory_dir, "h1", "h3", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["h1", "h3"]
    for line, name in zip(lines, ["h1", "h3"]):
        port = next(h.ssh_port for h in bed.hosts if h.name == name)
        assert f"ssh 127.0.0.1:{port} " in line
        assert f"isatap {kernel_address(bed, name)} " in line
    assert not (tmp_path / "nornir.log").exists()


def test_the_library_example_measures_every_pair(bed, installed_venv, tmp_path):
    report = tmp_path / "mesh.json"
    started = time.monotonic()
    done = example(installed_venv, "library.py", bed.inventory_dir, report, cwd=tmp_path)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(report.read_text())
    counts = ("hosts", "pairs", "ok", "lossy", "unreachable", "error")
    assert {k: document["summary"][k] for k in counts} == {"hosts": 3, "pairs": 6, "ok": 6,
                                                          "lossy": 0, "unreachable": 0, "error": 0}
    assert document["summary"]["underlay"] is None and document["summary"]["mtu"] is None
    assert {p["received"] for p in document["pairs"]} == {2}
    assert {h["address"] for h in document["hosts"]} == {kernel_address(bed, n) for n in HOSTS}
    assert 0 < document["elapsed_s"] < took
    assert done.stdout.startswith("mesh ALL OK: 3 hosts, 6 pairs: 6 ok")


def test_the_tasks_example_runs_teardown_and_both_meshes(bed, installed_venv, tmp_path):
    done = example(installed_venv, "nornir_tasks.py", bed.inventory_dir, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in HOSTS:
        assert not has_sit1(bed, name)
        assert f"teardown {name}: changed=False failed=False" in done.stdout
    assert done.stdout.count("'summary': 'no sit1'") == 3  # print_result of Nornir's Results
    assert done.stdout.count("mesh ALL OK: 3 hosts, 6 pairs: 6 ok") == 2  # both runners


def test_task_functions_give_results_as_the_hosts_are(bed):
    nr = load_inventory(bed.inventory_dir).nornir  # Nornir's ThreadedRunner
    done = nr.run(task=fleet.nornir.teardown, dry_run=True)
    assert sorted(done) == HOSTS and not done.failed
    for name in HOSTS:
        assert (done[name][0].changed, done[name][0].result["summary"]) == (False, "no sit1")
        assert not has_sit1(bed, name)

    setup = nr.run(task=fleet.nornir.setup, dry_run=True)
    for name in HOSTS:
        result = setup[name][0]
        if KERNEL_HAS_SIT:
            assert (result.failed, result.changed) == (False, True)
            assert result.result["summary"].startswith("would create sit1")
        else:
            assert result.failed and result.exception.kind == "preflight"
            assert "the kernel lacks sit/ISATAP support" in result.result
        assert not has_sit1(bed, name)  # a dry run: nothing made
    if not KERNEL_HAS_SIT:
        assert nr.data.failed_hosts == set(HOSTS)
        with pytest.raises(NornirExecutionError):
            nr.run(task=fleet.nornir.setup, dry_run=True, raise_on_error=True, on_failed=True)


def test_a_mesh_through_nornirs_runner_is_fleets_matrix(bed):
    nr = load_inventory(bed.inventory_dir).nornir
    probes = nr.run(task=fleet.nornir.mesh_probe, count=2)
    assert not probes.failed
    report = fleet.nornir.mesh_report(nr, probes)
    assert report.mesh.summary() == {"hosts": 3, "pairs": 6, "ok": 6, "lossy": 0,
                                     "unreachable": 0, "error": 0}
    again = fleet.nornir.mesh_report(nr, probes)  # the results are left as they were
    assert again.mesh.summary() == report.mesh.summary() and again.exit_code == 0

    two = nr.filter(filter_func=lambda h: h.name in {"h1", "h3"})
    probes = two.run(task=fleet.nornir.mesh_probe, count=1)
    assert fleet.nornir.mesh_report(two, probes).mesh.summary()["pairs"] == 2
    outcome = fleet.nornir.run(two, "mesh", params={"count": 1})
    assert sorted(outcome.results) == ["h1", "h3"]
    assert outcome.report.mesh.summary()["ok"] == 2 and outcome.exit_code == 0


def test_a_host_whose_sshd_is_gone_is_a_failed_result_not_a_stop(bed, installed_venv, tmp_path):
    # Runs last: h2's sshd does not come back.
    bed.stop_sshd("h2")
    nr = load_inventory(bed.inventory_dir).nornir
    done = nr.run(task=fleet.nornir.teardown, dry_run=True)
    assert set(done.failed_hosts) == {"h2"}
    assert done["h2"][0].exception.kind == "unreachable"
    assert {n: done[n][0].result["summary"] for n in ("h1", "h3")} == {"h1": "no sit1",
                                                                       "h3": "no sit1"}

    shown = example(installed_venv, "nornir_tasks.py", bed.inventory_dir, cwd=tmp_path)
    assert shown.returncode == 1, shown.stdout + shown.stderr
    assert "teardown h2: changed=False failed=True unreachable: " in shown.stdout
    for name in ("h1", "h3"):
        assert f"teardown {name}: changed=False failed=False" in shown.stdout
    assert shown.stdout.count("mesh COULD NOT TELL: 3 hosts, 6 pairs: 4 ok, 0 lossy, 0 unreachable, "
                              "2 error") == 2  # h2's row: could not probe; its column: ok
    assert shown.stdout.count("h2 -> *: error, could not probe (unreachable)") == 2
