"""The simulated control-plane bed (benchmarks/simulate.py) at tiny sizes: it completes, every pair
comes back ok, and what it prints is labelled a simulation. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_simulate_runs_at_tiny_sizes_and_says_it_is_a_simulation(tmp_path):
    report = tmp_path / "simulate.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.simulate", "--sizes", "5,10", "--json", str(report),
         "--workdir", str(tmp_path / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SIMULATION: a loopback asyncssh server" in done.stdout
    assert "no packets are sent" in done.stdout
    document = json.loads(report.read_text())
    assert document["simulation"] is True and document["label"].startswith("SIMULATION")
    runs = document["runs"]
    assert [r["hosts"] for r in runs] == [5, 10]
    for run in runs:
        assert run["returncode"] == 0 and run["error"] is None
        assert run["pairs"] == run["ok"] == run["pairs_expected"] == run["hosts"] * (run["hosts"] - 1)
        assert run["hosts_ok"] == run["hosts"]
        assert run["all_ok"] is True


def test_a_server_of_several_processes_plays_one_fleet_with_one_key_and_port(tmp_path):
    """Past half its open-file limit one simserver process cannot hold every host: several
    processes share the port and the host key, each on its own addresses, and fleet's host key
    checking (on, as by default) accepts every one of them."""
    report = tmp_path / "simulate.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.simulate", "--sizes", "10", "--server-processes", "3",
         "--peers", "4", "--json", str(report), "--workdir", str(tmp_path / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "server: 3 processes" in done.stdout
    logs = sorted(p.name for p in (tmp_path / "work").glob("simserver*.log"))
    assert logs == ["simserver-1.log", "simserver-2.log", "simserver.log"]
    served = [(tmp_path / "work" / name).read_text() for name in logs]
    # hosts 1-4, 5-8 and 9-10: each process saw its own hosts' logins and probes, none idle
    assert all('"probes": ' in text and '"probes": 0' not in text for text in served), served
    known = (tmp_path / "work" / "keys" / "known_hosts").read_text().splitlines()
    assert len(known) == 10 and len({line.split()[2] for line in known}) == 1
    [run] = json.loads(report.read_text())["runs"]
    assert run["all_ok"] is True and run["ok"] == 40
