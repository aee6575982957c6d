"""fleet.watch.changes and fleet.watch.incidents: a round as states, what changed between two
rounds and of which kind, incidents and flapping read back from the changes. Pure."""

from dataclasses import replace

import pytest
from meshes import host, mesh

from fleet.mesh.model import HostState, PairState
from fleet.watch.changes import Change, HostSample, PairSample, RoundSnapshot, changes, snapshot
from fleet.watch.history import ChangeRow
from fleet.watch.incidents import flapping, incidents

NAMES = ["h1", "h2", "h3"]


def down(m, name, kind="unreachable"):
    """The mesh with host `name` unable to probe (its error kind `kind`)."""
    hosts = list(m.hosts)
    i = NAMES.index(name)
    hosts[i] = replace(host(name, i, HostState.ERROR), error_kind=kind)
    return replace(m, hosts=tuple(hosts))


def states(snap):
    return {(p.src, p.dst): p.state for p in snap.pairs}


def test_a_round_as_states_with_the_reports_figures():
    snap = snapshot(mesh(NAMES, {("h1", "h2"): {"state": PairState.LOSSY, "received": 2},
                                 ("h2", "h3"): {"state": PairState.UNREACHABLE}}, rtt=2.0, count=4))
    assert [h.state for h in snap.hosts] == ["ok", "ok", "ok"]
    pair = snap.pair_map()[("h1", "h2")]
    assert (pair.state, pair.loss_pct, pair.rtt_avg_ms) == ("lossy", 50.0, 2.0)
    assert snap.pair_map()[("h2", "h3")].loss_pct == 100.0
    assert snap.counts() == {"ok": 4, "lossy": 1, "unreachable": 1, "mtu-failed": 0, "error": 0,
                             "not-measured": 0}


def test_a_host_unreachable_over_ssh_is_down_and_its_pairs_not_measured_never_lost():
    m = down(mesh(NAMES, {(s, "h3"): {"state": PairState.ERROR} for s in ()}), "h3")
    snap = snapshot(m)
    assert snap.host_states() == {"h1": "ok", "h2": "ok", "h3": "down"}
    assert {k: v for k, v in states(snap).items() if k[0] == "h3"} == {
        ("h3", "h1"): "not-measured", ("h3", "h2"): "not-measured"}
    assert snap.pair_map()[("h3", "h1")].loss_pct is None
    assert snap.hosts_down() == 1
    # reached, but its probe failed: an error, not down; its pairs not measured all the same
    failed = snapshot(down(mesh(NAMES), "h3", kind="command"))
    assert failed.host_states()["h3"] == "error"
    assert states(failed)[("h3", "h1")] == "not-measured"


def test_the_first_round_reports_what_is_not_ok_and_a_same_round_nothing():
    broken = snapshot(mesh(NAMES, {("h1", "h2"): {"state": PairState.UNREACHABLE}}))
    assert changes(None, broken) == [Change("pair", "h1", "h2", "tunnel", None, "unreachable")]
    assert changes(None, snapshot(mesh(NAMES))) == []
    assert changes(broken, broken) == []


def test_a_break_and_its_recovery_carry_the_failing_layers_kind():
    fine = snapshot(mesh(NAMES))
    lossy = snapshot(mesh(NAMES, {("h2", "h1"): {"state": PairState.LOSSY}}))
    assert changes(fine, lossy) == [Change("pair", "h2", "h1", "tunnel", "ok", "lossy")]
    assert changes(lossy, fine) == [Change("pair", "h2", "h1", "tunnel", "lossy", "ok")]
    assert changes(lossy, fine)[0].recovery and not changes(fine, lossy)[0].recovery


def test_a_host_going_down_and_back_is_a_host_down_change_and_its_pairs_not_measured():
    fine = snapshot(mesh(NAMES))
    # h3 down: its own pairs not measured; the others' pairs to it lost (its guest stopped)
    gone = snapshot(down(mesh(NAMES, {("h1", "h3"): {"state": PairState.UNREACHABLE},
                                      ("h2", "h3"): {"state": PairState.UNREACHABLE}}), "h3"))
    found = changes(fine, gone)
    assert found[0] == Change("host", "h3", None, "host-down", "ok", "down")
    assert {(c.name, c.kind, c.after) for c in found[1:]} == {
        ("h1 -> h3", "host-down", "unreachable"), ("h2 -> h3", "host-down", "unreachable"),
        ("h3 -> h1", "not-measured", "not-measured"), ("h3 -> h2", "not-measured", "not-measured")}
    back = changes(gone, fine)
    assert back[0] == Change("host", "h3", None, "host-down", "down", "ok")
    assert {(c.name, c.kind) for c in back[1:]} == {
        ("h1 -> h3", "host-down"), ("h2 -> h3", "host-down"), ("h3 -> h1", "not-measured"),
        ("h3 -> h2", "not-measured")}


@pytest.mark.parametrize("before, after, kind", [
    ("ok", "mtu-failed", "mtu"), ("mtu-failed", "ok", "mtu"), ("ok", "error", "tunnel"),
    ("lossy", "unreachable", "tunnel")])
def test_pair_kinds(before, after, kind):
    hosts = (HostSample("a", "ok"), HostSample("b", "ok"))
    one = RoundSnapshot(hosts, (PairSample("a", "b", before),))
    two = RoundSnapshot(hosts, (PairSample("a", "b", after),))
    assert changes(one, two) == [Change("pair", "a", "b", kind, before, after)]


def test_the_underlay_is_a_change_of_its_own():
    hosts = (HostSample("a", "ok"), HostSample("b", "ok"))
    one = RoundSnapshot(hosts, (PairSample("a", "b", "ok", underlay="ok"),))
    two = RoundSnapshot(hosts, (PairSample("a", "b", "ok", underlay="unreachable"),))
    assert changes(one, two) == [Change("pair", "a", "b", "underlay", "ok", "unreachable")]


def rows(*found):
    return [ChangeRow(round_, float(round_ * 30), change) for round_, change in found]


def test_incidents_open_at_a_break_and_close_at_the_recovery():
    pair = ("pair", "h1", "h2")
    found = incidents(rows((2, Change(*pair, "tunnel", "ok", "lossy")),
                           (3, Change(*pair, "tunnel", "lossy", "unreachable")),
                           (5, Change(*pair, "tunnel", "unreachable", "ok")),
                           (6, Change("host", "h3", None, "host-down", "ok", "down")),
                           (7, Change("pair", "h2", "h1", "tunnel", "lossy", "ok"))))
    first, host_down, before_window = found
    assert (first.name, first.kind, first.state, first.broke_round, first.recovered_round,
            first.seconds) == ("h1 -> h2", "tunnel", "lossy", 2, 5, 90.0)
    assert host_down.ongoing and host_down.broke_round == 6
    assert before_window.broke_round is None and before_window.recovered_round == 7


def test_flapping_counts_changes_per_subject_against_the_threshold():
    pair = ("pair", "h1", "h2")
    found = rows(*[(r, Change(*pair, "tunnel", "ok" if r % 2 else "lossy", "lossy" if r % 2 else "ok"))
                   for r in range(1, 6)], (9, Change("host", "h3", None, "host-down", "ok", "down")))
    [flapper] = flapping(found, threshold=4)
    assert (flapper.name, flapper.changes, flapper.first_round, flapper.last_round) == ("h1 -> h2", 5, 1, 5)
    assert flapping(found, threshold=6) == []
    assert [f.name for f in flapping(found, threshold=1)] == ["h1 -> h2", "h3"]
