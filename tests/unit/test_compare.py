"""Comparing two meshes and judging gates, on synthetic meshes whose differences are known."""

import pytest
from meshes import mesh

from fleet.mesh.compare import compare, increase_pct
from fleet.mesh.gates import Gates, check_gates
from fleet.mesh.model import PairState

NAMES = ["h1", "h2", "h3"]
UNREACHABLE = {"state": PairState.UNREACHABLE}


def test_identical_meshes_have_no_changes_and_pass_the_default_gate():
    c = compare(mesh(NAMES), mesh(NAMES))
    assert (c.pairs_compared, c.pairs_added, c.pairs_removed) == (6, 0, 0)
    assert c.new_failures.total == c.recovered.total == c.newly_unreachable.total == 0
    assert c.rtt_increases.total == 0 and c.loss_increases.total == 0
    # 18 replies: a P50, and too few for a P99 (fleet.mesh.percentiles)
    assert (c.p50_increase_pct, c.p99_increase_pct) == (0.0, None)
    verdict = check_gates(Gates(), mesh(NAMES), c)
    assert [check.name for check in verdict.checks] == ["new-failures", "hosts-gone", "mtu",
                                                        "unmeasured"]
    assert verdict.passed and verdict.exit_code == 0


def test_a_new_failure_is_listed_and_fails_unless_allowed():
    after = mesh(NAMES, {("h1", "h3"): UNREACHABLE, ("h2", "h3"): {"state": PairState.LOSSY}})
    c = compare(mesh(NAMES), after)
    assert [(p.src, p.dst, p.before, p.after) for p in c.new_failures.pairs] == [
        ("h1", "h3", PairState.OK, PairState.UNREACHABLE), ("h2", "h3", PairState.OK, PairState.LOSSY)]
    assert [(p.src, p.dst) for p in c.newly_unreachable.pairs] == [("h1", "h3")]  # lossy still reaches
    assert c.new_failures.pairs[0].loss_after_pct == 100.0
    failed = check_gates(Gates(), after, c)
    assert not failed.passed and failed.exit_code == 1
    # the lossy pair fails it too, unless a loss limit judges loss
    assert failed.checks[0].offenders == ("h1 -> h3 ok -> unreachable", "h2 -> h3 ok -> lossy")
    limited = check_gates(Gates(max_loss_pct=50), after, c)
    assert [(g.name, g.offenders) for g in limited.checks[:2]] == [
        ("max-loss-pct", ("h1 -> h3 100%",)), ("new-failures", ("h1 -> h3 ok -> unreachable",))]
    assert check_gates(Gates(allow_new_failures=True), after, c).passed


def test_a_pair_that_can_no_longer_be_measured_counts_as_a_new_failure():
    after = mesh(NAMES, {("h2", "h1"): {"state": PairState.ERROR}})
    c = compare(mesh(NAMES), after)
    assert c.newly_unreachable.total == 1
    assert not check_gates(Gates(), after, c).passed


def test_a_recovered_pair_is_listed_and_passes():
    before = mesh(NAMES, {("h1", "h2"): UNREACHABLE, ("h3", "h1"): {"state": PairState.LOSSY}})
    c = compare(before, mesh(NAMES))
    assert [(p.src, p.dst, p.before) for p in c.recovered.pairs] == [
        ("h1", "h2", PairState.UNREACHABLE), ("h3", "h1", PairState.LOSSY)]
    assert c.new_failures.total == 0 and c.loss_before_pct == pytest.approx(100 * 4 / 18, abs=0.1)
    assert c.loss_after_pct == 0.0
    assert check_gates(Gates(), mesh(NAMES), c).passed


def test_new_and_removed_hosts_are_named_and_only_common_pairs_compared():
    before = mesh(["h1", "h2", "h3"])
    after = mesh(["h2", "h1", "h4"], {("h4", "h1"): UNREACHABLE})  # h1 and h2 swapped places too
    c = compare(before, after)
    assert (c.hosts_added, c.hosts_removed) == (("h4",), ("h3",))
    assert (c.pairs_compared, c.pairs_added, c.pairs_removed) == (2, 4, 4)
    assert c.new_failures.total == 0  # h4's pairs have no baseline to have been ok in


def test_rtt_increase_gate_judges_the_mesh_p50_and_p99_over_every_reply_and_lists_the_worst_pairs():
    names = [f"h{i}" for i in range(1, 6)]  # 20 pairs of 5 replies: 100, enough for a P99
    after = mesh(names, {("h1", "h2"): {"rtt": 5.0}, ("h3", "h4"): {"rtt": 2.0}}, rtt=1.0, count=5)
    c = compare(mesh(names, rtt=1.0, count=5), after)
    assert (c.rtt_before.p50_ms, c.rtt_before.p99_ms) == (1.0, 1.0)
    assert (c.rtt_after.p50_ms, c.rtt_after.p90_ms, c.rtt_after.p99_ms) == (1.0, 1.0, 5.0)
    assert c.rtt_after.p50_ms == after.rtt_percentiles()["p50"]  # the mesh's own figure
    assert (c.p50_increase_pct, c.p99_increase_pct) == (0.0, 400.0)
    assert [(p.src, p.dst, p.rtt_increase_ms, p.rtt_increase_pct) for p in c.rtt_increases.pairs] == [
        ("h1", "h2", 4.0, 400.0), ("h3", "h4", 1.0, 100.0)]
    gate = check_gates(Gates(max_rtt_increase_pct=50), after, c).checks[0]
    assert gate.name == "max-rtt-increase-pct" and not gate.passed
    assert gate.detail == "mesh RTT P50 +0.0%, P99 +400.0%: P99 above 50%"
    assert gate.offenders[0] == "h1 -> h2 1.000 -> 5.000 ms (+400.0%)"
    assert check_gates(Gates(max_rtt_increase_pct=500), after, c).passed


def test_a_mesh_wide_slowdown_moves_the_p50():
    c = compare(mesh(NAMES, rtt=1.0), mesh(NAMES, rtt=1.5))
    assert c.p50_increase_pct == 50.0 and c.rtt_increases.total == 6
    assert not check_gates(Gates(max_rtt_increase_pct=20), mesh(NAMES), c).passed


def test_the_loss_gate_fails_on_any_pair_above_the_limit_and_lists_loss_rises():
    after = mesh(NAMES, {("h2", "h3"): {"state": PairState.LOSSY, "received": 2}}, count=3)
    c = compare(mesh(NAMES), after)
    assert [(p.src, p.dst, p.loss_increase_pct) for p in c.loss_increases.pairs] == [("h2", "h3", 33.3)]
    check = check_gates(Gates(max_loss_pct=10), after, c).checks[0]
    assert (check.name, check.passed, check.offenders) == ("max-loss-pct", False, ("h2 -> h3 33.3%",))
    assert check_gates(Gates(max_loss_pct=40), after, c).passed


def test_limits_apply_to_a_mesh_without_a_baseline():
    slow = mesh(NAMES, {("h3", "h2"): {"rtt": 80.0}})
    verdict = check_gates(Gates(max_rtt_ms=50, max_loss_pct=0), slow)
    assert [(c.name, c.passed) for c in verdict.checks] == [
        ("max-loss-pct", True), ("max-rtt-ms", False), ("mtu", True), ("unmeasured", True)]
    assert verdict.checks[1].offenders == ("h3 -> h2 80.000 ms",)
    assert [c.name for c in check_gates(Gates(), slow).checks] == ["mtu", "unmeasured"]


def test_long_lists_are_cut_and_their_totals_kept():
    names = [f"h{i}" for i in range(12)]  # 132 pairs
    c = compare(mesh(names), mesh(names, rtt=0.9), listed=5)
    assert c.rtt_increases.total == 132 and len(c.rtt_increases.pairs) == 5
    down = mesh(names, {(s, d): UNREACHABLE for s in names for d in names if s != d})
    lost = compare(mesh(names), down, listed=5).newly_unreachable
    assert lost.total == 132 and [(p.src, p.dst) for p in lost.pairs][:2] == [("h0", "h1"), ("h0", "h2")]


def test_increases_need_a_base():
    assert increase_pct(2.0, 3.0) == 50.0 and increase_pct(2.0, 1.0) == -50.0
    assert increase_pct(0.0, 1.0) is None and increase_pct(None, 1.0) is None
