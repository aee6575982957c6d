"""The soak (benchmarks/soak): its pure core against hand-made reports, and a smoke-size run on a
real OpenSSH namespace bed (root only): it ran both phases, checked every result, made figures,
and its own verdict passed.

Smoke size is the smallest at which that verdict means something: two fault cycles (the trends
are read over the second half, so three iterations after three of warm-up) and 10 hosts, enough
for a run's first logins to fill the daemon's bounded thread pool at once. At 6 hosts and 3
iterations the warm-up (a pool thread started late, the first MB of memory) read as a leak."""

import json
import subprocess
import sys

import pytest
from conftest import REPO, need_root_and

from benchmarks.soak import plan

HOSTS = [f"h{i}" for i in range(1, 7)]


def test_schedule_kills_then_drops_then_heals_and_ends_clean():
    faults = plan.schedule(HOSTS, 7)
    assert faults[0] == plan.Faults(frozenset({"h1", "h2", "h3"}))
    assert faults[1] == plan.Faults(frozenset({"h1", "h2", "h3"}), frozenset({"h5", "h6"}))
    assert faults[2] == plan.Faults()
    assert faults[3].killed == {"h4", "h1", "h2"} and faults[4].dropped == {"h5", "h6"}
    assert faults[6] == plan.Faults()  # a kill at 6 could not be restarted within the run
    assert all(not (f.killed & f.dropped) for f in faults)


def _setup_doc(rows):
    return {"task": "setup", "hosts": [{"name": n, "failed": k is not None, "status": "failed"
                                        if k else "ok", "error_kind": k, "error": "x"}
                                       for n, k in rows.items()]}


def _mesh_doc(states, pairs):
    return {"task": "mesh", "hosts": [{"name": n, "state": s, "error_kind": k, "error": None}
                                      for n, (s, k) in states.items()],
            "pairs": [{"src": s, "dst": d, "state": st, "error": None} for (s, d), st in pairs.items()]}


FAULTS = plan.Faults(frozenset({"h1"}), frozenset({"h2"}))
EXPECT = plan.expectation(FAULTS, persistent=False, kernel_has_sit=False)


def test_a_setup_report_as_expected_has_no_problem_and_every_deviation_is_named():
    good = {"h1": "unreachable", "h2": "unreachable", "h3": "preflight"}
    assert plan.check_setup(_setup_doc(good), EXPECT) == []
    wrong = {"h1": "auth", "h2": None, "h3": "preflight"}
    problems = plan.check_setup(_setup_doc(wrong), EXPECT)
    assert problems == ["setup h1: error_kind 'auth', expected unreachable (x)",
                        "setup h2: ok, expected a failure"]


def test_mesh_pairs_from_faulted_sources_are_errors_and_to_dropping_hosts_silent():
    hosts = ["h1", "h2", "h3"]
    pairs = {(s, d): plan.expected_pair_state(s, d, EXPECT) for s in hosts for d in hosts if s != d}
    assert pairs[("h3", "h1")] == "ok"  # a dead sshd still answers pings
    assert pairs[("h3", "h2")] == "error"  # unconfigured source (no sit): could not tell
    assert pairs[("h1", "h3")] == "error"
    states = {"h1": ("error", "unreachable"), "h2": ("error", "unreachable"),
              "h3": ("unconfigured", None)}
    assert plan.check_mesh(_mesh_doc(states, pairs), EXPECT) == []
    pairs[("h3", "h1")] = "unreachable"
    states["h2"] = ("error", "timeout")
    assert plan.check_mesh(_mesh_doc(states, pairs), EXPECT) == [
        "mesh h2: error_kind 'timeout', expected unreachable (None)",
        "mesh pair h3->h1: unreachable, expected ok"]


def test_slope_is_least_squares_and_the_verdict_reads_the_second_half():
    assert plan.slope([1, 2, 3, 4]) == pytest.approx(1.0)
    assert plan.slope([5, 5, 5]) == 0.0
    rows = [{"fds": v} for v in [50, 10, 10, 10, 11, 12, 13, 14]]  # warm-up first, then a leak
    (trend,) = plan.trends(rows, {"fds": plan.COUNT})
    assert trend.slope == pytest.approx(1.0) and trend.leak
    assert not plan.Verdict(plan.trends([{"fds": 10}] * 8, {"fds": plan.COUNT})).leak
    # Channels that pile up and vanish with their connection: no slope, still a leak.
    sawtooth = [{"channels": v} for v in [0, 4, 4, 8, 9, 13, 17, 18, 2, 6]]
    (trend,) = plan.trends(sawtooth, {"channels": plan.NONE_LEFT})
    assert trend.slope < 0 and trend.above_ceiling and trend.leak


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
