"""The soak (benchmarks/soak): a smoke-size run on a real OpenSSH namespace bed (root only; its pure
core: tests/unit/test_soak_plan.py): it ran both phases, checked every result, made figures,
and its own verdict passed.

Smoke size is the smallest at which that verdict means something: two fault cycles (the trends
are read over the second half, so three iterations after three of warm-up) and 10 hosts, enough
for a run's first logins to fill the daemon's bounded thread pool at once. At 6 hosts and 3
iterations the warm-up (a pool thread started late, the first MB of memory) read as a leak."""

import json
import subprocess
import sys

from conftest import REPO, need_root_and


@need_root_and("ip", "/usr/sbin/sshd", "ssh-keygen", "unshare", "nft", "ping")
def test_smoke_soak_runs_both_phases_checks_results_and_passes_its_verdict(tmp_path):
    report = tmp_path / "soak.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--hosts", "10", "--iterations",
                           "6", "--count", "1", "--command-timeout", "3", "--host-timeout", "8",
                           "--json", str(report)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert report.exists(), done.stdout + done.stderr
    document = json.loads(report.read_text())
    assert [p["name"] for p in document["phases"]] == ["in-process", "persist"]
    for phase in document["phases"]:
        rows = phase["rows"]
        assert [r["iteration"] for r in rows] == [0, 1, 2, 3, 4, 5]
        assert [r["faults"] for r in rows] == ["sshd down h1,h2,h3",
                                               "sshd down h1,h2,h3; drops h9,h10", "none",
                                               "sshd down h4,h5,h6",
                                               "sshd down h4,h5,h6; drops h9,h10", "none"]
        assert all(isinstance(r["fds"], int) and r["fds"] > 0 and r["rss_mb"] > 0 for r in rows)
        assert all(isinstance(r["expected"], bool) for r in rows)
        assert sorted(int(k) for k in phase["problems"]) == [r["iteration"] for r in rows
                                                            if not r["expected"]]
        assert {t["metric"] for t in phase["trends"]} >= {"rss_mb", "tasks"}
    in_process, persist = document["phases"]
    assert in_process["problems"] == {}, in_process["problems"]  # each fault failed as it should
    assert all(r["tcp"] == 0 and r["tasks"] == 0 and r["sshd_conns"] == 0 for r in in_process["rows"])
    kept = [r["kept"] for r in persist["rows"]]
    # every host but the three with a dead sshd is kept, and while two drop every packet their
    # stalled connections are given up (the next run logs in again)
    assert kept == [7, 5, 10, 7, 5, 10]
    # the soak's own verdict: no leak in either phase, every iteration as expected
    leaks = {p["name"]: [t for t in p["trends"] if t["leak"]] for p in document["phases"]}
    assert document["pass"] is True, (leaks, done.stdout[-3000:])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "soak verdict: PASS" in done.stdout and "phase persist" in done.stdout
    again = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--report", str(report)],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
    assert again.returncode == done.returncode and again.stdout == done.stdout
