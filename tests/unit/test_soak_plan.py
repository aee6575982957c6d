"""The soak (benchmarks/soak): its pure core against hand-made reports (its smoke-size run on an
OpenSSH namespace bed: tests/nsbed/test_soak_smoke.py)."""

import pytest

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
