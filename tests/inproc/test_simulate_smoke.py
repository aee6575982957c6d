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
    assert "SIMULATION: one in-process asyncssh server" in done.stdout
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
