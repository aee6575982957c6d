"""A namespace bed above 200 hosts: its address plan past 172.31.1.249 on the machine, the
kernel's neighbour tables raised while it lives and put back when it goes, and a login to a host
beyond the old /24 (the 1,000-host runs: benchmarks/bigbed.py, docs/performance.md)."""

import subprocess
import sys
from ipaddress import IPv4Address
from pathlib import Path

from conftest import REPO, need_root_and

from fleet.lab import neighbour_tables

pytestmark = [need_root_and("ip", "/usr/sbin/sshd", "ssh-keygen", "unshare")]

HOSTS = 250  # past the old 240-host limit and above the 200 that needs room in the tables


def _tables() -> dict[str, int]:
    return {key: neighbour_tables.read(key) for key in neighbour_tables.KEYS}


def test_a_bed_of_250_hosts_answers_and_puts_the_neighbour_tables_back(tmp_path: Path) -> None:
    from fleet.lab.nsbed import NamespaceBed

    before = _tables()
    said: list[str] = []
    with NamespaceBed(HOSTS, workdir=tmp_path / "bed", say=said.append) as bed:
        during = _tables()
        last = bed.hosts[-1]
        assert last.ipv4 == IPv4Address("172.31.2.3")  # 172.31.1.10 + 249, in the /20
        shown = subprocess.run(["ip", "-n", last.netns, "-brief", "addr", "show", "dev", "eth0"],
                               capture_output=True, text=True, check=True).stdout
        assert "172.31.2.3/20" in shown
        done = subprocess.run([sys.executable, "-m", "fleet", "run", "noop", "--tasks-dir",
                               str(REPO / "benchmarks" / "tasks"),
                               "-i", str(bed.inventory_dir), "--no-progress", "-l",
                               f"h1,h241,{last.name}"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    for key, value in during.items():
        assert value >= neighbour_tables.WANTED[key.rsplit(".", 1)[1]], key
    raised = [key for key in neighbour_tables.KEYS if before[key] < during[key]]
    if raised:  # the machine had the defaults: the bed said so, and put them back
        assert any("raised the kernel's neighbour tables" in line for line in said)
        assert any("restored" in line for line in said)
    assert _tables() == before
    assert not [ns for ns in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                            text=True).stdout.split() if ns.startswith(bed.tag)]
