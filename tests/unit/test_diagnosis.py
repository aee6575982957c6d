"""The diagnosis of a mesh: each kind of finding on small synthetic meshes, aggregation of whole
rows, columns and meshes into one finding, readability at 1,000 hosts, speed at 2,000."""

import dataclasses
import io
import json
import re
import time
from array import array
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from itertools import chain

import pytest

from fleet.mesh.diagnosis import (
    NAMES_SHOWN,
    PAIRS_SHOWN,
    HostRecord,
    PairRecord,
    diagnose,
    diagnose_mesh,
)
from fleet.mesh.model import (
    MTU_NOT_MEASURED,
    NAN,
    NOT_MEASURED,
    STATES,
    HostState,
    Mesh,
    MeshHost,
    PairColumns,
    PairState,
)
from fleet.mesh.probe import ProbeParams
from fleet.mesh.report import MeshJson, MeshReport, render_mesh
from fleet.mesh.verdict import MeshVerdict, Status, judge

OK, LOSSY, UNREACHABLE, ERROR = PairState.OK, PairState.LOSSY, PairState.UNREACHABLE, PairState.ERROR
RECEIVED = {OK: 3, LOSSY: 1, UNREACHABLE: 0, ERROR: 0}


def host(i: int, state: HostState = HostState.OK) -> MeshHost:
    error = {HostState.OK: None, HostState.UNCONFIGURED: "sit1 does not carry its address; run "
             "`fleet run setup`", HostState.ERROR: "cannot connect: Connection refused"}[state]
    return MeshHost(f"h{i}", IPv4Address(0xAC1F0000 + i), IPv6Address(0xFD00 << 112 | i), state,
                    error, probe=None if state is HostState.ERROR else "fping",
                    error_kind="unreachable" if state is HostState.ERROR else None)


def mesh_of(n: int, state: Callable[[int, int], PairState] = lambda s, d: OK,
            hosts: dict[int, HostState] | None = None) -> Mesh:
    """A full mesh of n hosts; `state(src, dst)` gives each pair's state (a host that could not
    probe has an error row, as build_mesh makes it)."""
    hosts = hosts or {}
    columns = PairColumns()
    for s in range(n):
        for d in range(n):
            if s == d:
                continue
            st = ERROR if hosts.get(s) is HostState.ERROR else state(s, d)
            received = RECEIVED[st]
            columns.add(s, d, st, 0 if st is ERROR else 3, received,
                        (0.1, 0.2, 0.3, 0.05) if received else (None,) * 4,
                        "source failed" if st is ERROR else None)
    return Mesh(tuple(host(i, hosts.get(i, HostState.OK)) for i in range(n)), columns, ProbeParams())


def big_mesh(n: int) -> Mesh:
    """A full mesh of n hosts, every pair ok, built column by column (millions of pairs)."""
    columns = PairColumns()
    columns.src = array("I", chain.from_iterable([i] * (n - 1) for i in range(n)))
    columns.dst = array("I", chain.from_iterable(chain(range(i), range(i + 1, n)) for i in range(n)))
    count = len(columns.src)
    columns.state = array("B", bytes(count))
    columns.sent = array("H", [3]) * count
    columns.received = array("H", [3]) * count
    columns.rtt = array("f", [0.1, 0.2, 0.3, 0.05]) * count
    columns.pct = array("f", [NAN]) * (3 * count)  # no percentiles, no underlay, no MTU check
    columns.u_state = array("B", [NOT_MEASURED]) * count
    columns.u_sent, columns.u_received = array("H", bytes(2 * count)), array("H", bytes(2 * count))
    columns.u_rtt = array("f", [NAN]) * count
    columns.mtu = array("b", [MTU_NOT_MEASURED]) * count
    return Mesh(tuple(host(i) for i in range(n)), columns, ProbeParams())


def set_state(mesh: Mesh, s: int, d: int, state: PairState) -> None:
    row = mesh.find(s, d)
    assert row is not None
    mesh.columns.state[row] = STATES.index(state)
    mesh.columns.received[row] = RECEIVED[state]


def kinds(findings):
    return [f.kind for f in findings]


def isolating(h: int) -> Callable[[int, int], PairState]:
    return lambda s, d: UNREACHABLE if h in (s, d) else OK


def test_a_healthy_mesh_has_no_finding_and_is_all_ok():
    mesh = mesh_of(4)
    assert diagnose_mesh(mesh) == [] and judge(mesh).text == "ALL OK" and judge(mesh).ok
    report = MeshReport(mesh, interrupted=False, elapsed=1.0)
    assert report.exit_code == 0
    assert report.render().startswith("mesh ALL OK: 4 hosts, 12 pairs")
    assert "diagnosis" not in report.render()


def test_a_host_cut_off_both_ways_is_one_finding_told_apart_by_the_underlay():
    mesh = mesh_of(5, isolating(2))
    ipv4_answers = diagnose_mesh(mesh, lambda r: OK)
    ipv4_silent = diagnose_mesh(mesh, lambda r: UNREACHABLE if 2 in (mesh.columns.src[r],
                                                                       mesh.columns.dst[r]) else OK)
    unknown = diagnose_mesh(mesh)
    assert kinds(ipv4_answers) == ["tunnel-blocked"] and ipv4_answers[0].hosts == ("h2",)
    assert "protocol 41 is filtered" in ipv4_answers[0].text
    assert "security group" in ipv4_answers[0].text and ipv4_answers[0].pairs == 8
    assert kinds(ipv4_silent) == ["host-down"] and ipv4_silent[0].hosts == ("h2",)
    assert "neither tunnel nor IPv4 ping answers" in ipv4_silent[0].text
    assert kinds(unknown) == ["host-unreachable"] and unknown[0].hosts == ("h2",)
    assert unknown[0].text.startswith("* -> h2: unreachable from every source, and it reaches none")
    assert "underlay (IPv4) ping tells which" in unknown[0].text
    # An underlay not measured on any pair is the same as no underlay data.
    assert diagnose_mesh(mesh, lambda r: None) == unknown


def test_several_blocked_hosts_are_one_finding_naming_them():
    mesh = mesh_of(8, lambda s, d: UNREACHABLE if {s, d} & {1, 4, 6} else OK)
    findings = diagnose_mesh(mesh, lambda r: OK)
    assert kinds(findings) == ["tunnel-blocked"]
    assert findings[0].hosts == ("h1", "h4", "h6")
    assert findings[0].text.startswith("3 hosts (h1, h4, h6): IPv4 ping answers but no tunnel ping")


def test_a_source_that_cannot_probe_names_its_error_kind_once_for_its_whole_row():
    mesh = mesh_of(10, hosts={3: HostState.ERROR})
    findings = diagnose_mesh(mesh)
    assert kinds(findings) == ["source-cannot-probe"]
    assert findings[0].text == "h3 -> *: error, could not probe (unreachable): cannot connect: " \
                               "Connection refused"
    assert findings[0].pairs == 9 and not judge(mesh).ok
    # nothing measured failed, but a whole row was not measured: not green, and not "failed"
    assert judge(mesh).text == "COULD NOT TELL: source-cannot-probe (1 host)"
    text = render_mesh(mesh)
    assert text.count("h3 -> *") == 1 and text.startswith("mesh COULD NOT TELL")


def test_sources_that_cannot_probe_are_grouped_by_error_kind():
    hosts = [HostRecord("a", HostState.ERROR, "Permission denied", "auth"),
             HostRecord("b", HostState.ERROR, "refused", "unreachable"),
             ("c", HostState.ERROR, "Permission denied", "auth"),  # plain tuples do too
             HostRecord("d", HostState.OK)]
    pairs = [(s, d, ERROR if s < 3 else OK) for s in range(4) for d in range(4) if s != d]
    findings = diagnose(hosts, pairs)
    assert [(f.kind, f.hosts) for f in findings] == [("source-cannot-probe", ("a", "c")),
                                                     ("source-cannot-probe", ("b",))]
    assert findings[0].text.startswith("2 hosts could not probe (auth): a, c; a: Permission denied")
    assert findings[1].text == "b -> *: error, could not probe (unreachable): refused"


def test_a_failed_source_no_one_reaches_is_also_unreachable_from_every_source():
    mesh = mesh_of(4, isolating(0), hosts={0: HostState.ERROR})
    findings = diagnose_mesh(mesh)
    assert kinds(findings) == ["source-cannot-probe", "host-unreachable"]
    assert findings[1].text.startswith("* -> h0: unreachable from every source, its own probe failed")


def test_every_host_unconfigured_is_a_warning_when_every_ping_answers():
    mesh = mesh_of(3, hosts=dict.fromkeys(range(3), HostState.UNCONFIGURED))
    assert mesh.counts()["ok"] == mesh.pair_count
    findings = diagnose_mesh(mesh)
    assert kinds(findings) == ["unconfigured"] and findings[0].hosts == ("h0", "h1", "h2")
    assert "run `fleet run setup`" in findings[0].text
    assert judge(mesh).ok
    report = MeshReport(mesh, interrupted=False, elapsed=1.0)
    assert report.exit_code == 0 and report.render().startswith("mesh ALL OK")
    assert judge(mesh).text == "ALL OK (warning: unconfigured (3 hosts))"
    assert "diagnosis: ALL OK (warning: unconfigured (3 hosts))" in report.render()


def test_one_unconfigured_host_is_one_finding_that_explains_its_unreachable_column():
    mesh = mesh_of(4, lambda s, d: UNREACHABLE if d == 1 else OK, hosts={1: HostState.UNCONFIGURED})
    findings = diagnose_mesh(mesh)
    assert kinds(findings) == ["unconfigured"]
    assert findings[0].text.startswith("h1: sit1 does not carry its address")


def test_one_way_failures_are_asymmetric_and_a_whole_column_names_its_host():
    one = diagnose_mesh(mesh_of(3, lambda s, d: UNREACHABLE if (s, d) == (0, 1) else OK))
    assert kinds(one) == ["asymmetric"] and one[0].hosts == ("h0", "h1")
    assert one[0].text.startswith("h1 -> h0 ok but h0 -> h1 unreachable (asymmetric: check h1's")
    column = diagnose_mesh(mesh_of(6, lambda s, d: UNREACHABLE if d == 4 else OK))
    assert kinds(column) == ["asymmetric"] and column[0].pairs == 5
    assert "every one to h4: check h4's ip6tables for incoming ICMPv6 echo requests" in column[0].text
    row = diagnose_mesh(mesh_of(6, lambda s, d: UNREACHABLE if s == 4 else OK))
    assert kinds(row) == ["asymmetric"] and "every one from h4" in row[0].text


def test_pairs_failing_both_ways_between_working_hosts_are_unreachable():
    mesh = mesh_of(4, lambda s, d: UNREACHABLE if {s, d} == {0, 3} else OK)
    findings = diagnose_mesh(mesh)
    assert kinds(findings) == ["unreachable"] and findings[0].pairs == 2
    assert findings[0].text == "2 pairs unreachable over the tunnel: h0 -> h3, h3 -> h0"
    with_ipv4 = diagnose_mesh(mesh, lambda r: OK)
    assert with_ipv4[0].text.endswith("IPv4 ping answers on 2 of 2 of them: protocol 41 is "
                                      "filtered between those hosts")


def test_an_error_pair_of_a_working_source_is_a_pair_error():
    findings = diagnose_mesh(mesh_of(3, lambda s, d: ERROR if (s, d) == (2, 0) else OK))
    assert kinds(findings) == ["pair-error"] and "h2 -> h0" in findings[0].text
    assert "could not tell, not unreachable" in findings[0].text


def test_mtu_blackhole_names_the_host_whose_full_size_pings_all_fail():
    mesh = mesh_of(5)
    src, dst = mesh.columns.src, mesh.columns.dst
    findings = diagnose_mesh(mesh, mtu=lambda r: 3 not in (src[r], dst[r]))
    assert kinds(findings) == ["mtu-blackhole"] and findings[0].hosts == ("h3",)
    assert findings[0].pairs == 8
    assert findings[0].text.startswith("h3: small pings pass but full-size ones (don't fragment) fail")
    assert "sit1's MTU is 1480" in findings[0].text
    assert not MeshReport(mesh, interrupted=False, elapsed=1).findings  # no MTU column: nothing


def test_mtu_blackhole_of_single_pairs_lists_them():
    mesh = mesh_of(5)
    src, dst = mesh.columns.src, mesh.columns.dst
    findings = diagnose_mesh(mesh, mtu=lambda r: (src[r], dst[r]) not in {(0, 1), (2, 4)})
    assert kinds(findings) == ["mtu-blackhole"] and findings[0].pairs == 2
    assert "h0 -> h1, h2 -> h4" in findings[0].text
    # An unreachable pair cannot fail the MTU check: small pings do not pass either.
    unreachable = mesh_of(3, lambda s, d: UNREACHABLE if (s, d) == (0, 1) else OK)
    assert kinds(diagnose_mesh(unreachable, mtu=lambda r: False if r == 0 else None)) == ["asymmetric"]


def test_every_host_failing_mtu_is_one_finding():
    mesh = mesh_of(6)
    findings = diagnose_mesh(mesh, mtu=lambda r: False)
    assert kinds(findings) == ["mtu-blackhole"] and len(findings[0].hosts) == 6
    assert findings[0].text.startswith("every host: small pings pass")


def test_lossy_names_the_worst_pairs_only():
    loss = {(s, d): (s * 7 + d) % 5 for s in range(8) for d in range(8)}
    hosts = [HostRecord(f"h{i}", HostState.OK) for i in range(8)]
    pairs = [PairRecord(s, d, LOSSY if loss[s, d] else OK, loss[s, d] * 10.0)
             for s in range(8) for d in range(8) if s != d]
    (finding,) = diagnose(hosts, pairs)
    lossy = sum(1 for p in pairs if p.state is LOSSY)
    assert finding.kind == "lossy" and finding.pairs == lossy
    worst = finding.text.split("worst by loss: ")[1].split(", ")
    assert len(worst) == 5 and all(w.endswith(" 40%") for w in worst)
    assert len(finding.hosts) == 8  # the data names every host of a lossy pair, the text 5 pairs


def test_nothing_answering_anywhere_is_one_all_failing_finding():
    mesh = mesh_of(6, lambda s, d: UNREACHABLE)
    findings = diagnose_mesh(mesh)
    assert kinds(findings) == ["all-failing"] and findings[0].pairs == 30
    assert "protocol 41 is likely blocked everywhere" in findings[0].text
    assert judge(mesh).text == "NOT OK: all-failing (all 30 pairs)"
    ipv4 = diagnose_mesh(mesh, lambda r: OK)
    assert kinds(ipv4) == ["all-failing"] and "while IPv4 ping answers on 30 of 30 pairs" in ipv4[0].text
    down = diagnose_mesh(mesh, lambda r: UNREACHABLE)
    assert "not even IPv4 ping answers" in down[0].text
    text = render_mesh(mesh)
    assert text.count("all-failing") == 2  # the verdict and the finding, no line per pair or host


def test_records_and_mesh_columns_give_the_same_findings():
    mesh = mesh_of(7, lambda s, d: UNREACHABLE if 5 in (s, d) else LOSSY if (s, d) == (1, 2) else OK,
                   hosts={0: HostState.ERROR})
    c = mesh.columns
    records = [PairRecord(c.src[r], c.dst[r], mesh.state_at(r), mesh.row(r).loss_pct, OK)
               for r in range(mesh.pair_count)]
    assert diagnose(mesh.hosts, records) == diagnose_mesh(mesh, lambda r: OK)
    assert kinds(diagnose_mesh(mesh, lambda r: OK)) == ["source-cannot-probe", "tunnel-blocked",
                                                        "lossy"]


@pytest.mark.parametrize(("mesh", "status"), [
    (mesh_of(3), "ok"), (mesh_of(3, isolating(1)), "not-ok"),
    (mesh_of(4, hosts={2: HostState.UNCONFIGURED}), "ok"), (mesh_of(3, lambda s, d: LOSSY), "not-ok"),
    (mesh_of(1), "could-not-tell"), (mesh_of(0), "could-not-tell"),
    (mesh_of(4, hosts={0: HostState.ERROR}), "could-not-tell"),
    (mesh_of(3, lambda s, d: ERROR if s == 1 else OK), "could-not-tell"),
], ids=["ok", "isolated", "unconfigured", "lossy", "alone", "empty", "failed-source", "error-row"])
def test_the_exit_code_and_the_headline_follow_the_verdict(mesh, status):
    report = MeshReport(mesh, interrupted=False, elapsed=1.0)
    assert report.verdict.status == status
    assert (report.exit_code == 0) == (status == "ok")
    assert report.render().startswith({"ok": "mesh ALL OK", "not-ok": "mesh NOT OK",
                                       "could-not-tell": "mesh COULD NOT TELL"}[status])


def test_the_json_report_carries_the_verdict_first_and_the_diagnosis_after_the_pairs():
    mesh = mesh_of(3, isolating(2))
    stream = io.StringIO()
    MeshJson(mesh, interrupted=False, elapsed_s=1.0).write_json(stream)
    document = json.loads(stream.getvalue())
    assert list(document)[:2] == ["task", "verdict"]
    assert list(document)[-4:] == ["summary", "diagnosis", "interrupted", "elapsed_s"]
    assert document["verdict"] == {"status": "not-ok", "ok": False,
                                   "text": "NOT OK: host-unreachable (1 host)",
                                   "reasons": [{"kind": "host-unreachable", "hosts": 1, "pairs": 4,
                                                "warning": False}]}
    assert document["diagnosis"] == [{"kind": "host-unreachable", "hosts": ["h2"], "pairs": 4,
                                      "text": diagnose_mesh(mesh)[0].text}]


def test_a_thousand_hosts_with_every_kind_of_trouble_stay_readable():
    n = 1000
    mesh = big_mesh(n)
    hosts = list(mesh.hosts)
    for i in range(0, 60):                      # could not probe: error rows
        hosts[i] = host(i, HostState.ERROR)
        for d in range(n):
            if d != i:
                set_state(mesh, i, d, ERROR)
    for i in range(60, 100):                    # unconfigured, still measured
        hosts[i] = host(i, HostState.UNCONFIGURED)
    for i in range(100, 130):                   # cut off both ways
        for j in range(n):
            if j != i:
                set_state(mesh, i, j, UNREACHABLE)
                if j >= 60:                     # the failed sources' rows stay errors
                    set_state(mesh, j, i, UNREACHABLE)
    for j in range(200, 400):                   # lossy and asymmetric pairs here and there
        set_state(mesh, j, j + 1, LOSSY)
        set_state(mesh, j + 300, j + 2, UNREACHABLE)
    mesh.hosts = tuple(hosts)
    findings = diagnose_mesh(mesh, lambda r: OK)
    assert kinds(findings) == ["source-cannot-probe", "unconfigured", "tunnel-blocked",
                               "asymmetric", "lossy"]
    assert [len(f.hosts) for f in findings[:3]] == [60, 40, 30]  # the data names every host
    text = render_mesh(mesh, MeshVerdict(Status.NOT_OK, tuple(findings), mesh.pair_count))
    lines = text.splitlines()
    diagnosis = lines[lines.index(next(x for x in lines if x.startswith("diagnosis: "))):]
    assert len(diagnosis) <= 1 + len(findings) + 2  # the verdict, a line each, the RTT line
    for f in findings:  # a handful of names each, whatever the number of hosts or pairs
        named = re.findall(r"\bh\d+\b", f.text)
        assert len(named) <= max(NAMES_SHOWN + 1, 2 * PAIRS_SHOWN + 2) and len(f.text) < 600, f.text
    assert "60 hosts could not probe (unreachable): h0, h1, h2, h3, h4, h5, h6, h7 and 52 more" \
        in text
    assert "30 hosts (h100, h101, h102, h103, h104, h105, h106, h107 and 22 more)" in text


def test_two_thousand_hosts_are_diagnosed_in_seconds():
    mesh = big_mesh(2000)
    for j in range(2000):
        if j != 5:
            set_state(mesh, j, 5, UNREACHABLE)
            set_state(mesh, 5, j, UNREACHABLE)
    for j in range(0, 1000, 7):
        set_state(mesh, j, j + 1, LOSSY)
    start = time.perf_counter()
    findings = diagnose_mesh(mesh, lambda r: OK, lambda r: True)
    elapsed = time.perf_counter() - start
    assert kinds(findings) == ["tunnel-blocked", "lossy"] and findings[0].hosts == ("h5",)
    assert elapsed < 15, f"{elapsed:.1f} s for {mesh.pair_count} pairs"


def test_a_probers_note_is_shown_but_is_no_finding():
    mesh = mesh_of(3)
    mesh.hosts = (dataclasses.replace(mesh.hosts[0], notes=("fping failed: exit 3",)),
                  *mesh.hosts[1:])
    text = render_mesh(mesh)
    assert text.startswith("mesh ALL OK") and "diagnosis" not in text
    assert "notes:\n  h0: fping failed: exit 3; probed with fping" in text


def test_in_a_sampled_mesh_a_failure_without_its_reverse_pair_is_unreachable_not_asymmetric():
    columns = PairColumns()
    for s in range(5):  # each host probes the next one only
        columns.add(s, (s + 1) % 5, UNREACHABLE if s == 2 else OK, 3, 0 if s == 2 else 3)
    mesh = Mesh(tuple(host(i) for i in range(5)), columns, ProbeParams(), peers=1)
    findings = diagnose_mesh(mesh)
    assert kinds(findings) == ["unreachable"]  # h3 reaches h4: not cut off both ways
    assert findings[0].text == "1 pair unreachable over the tunnel: h2 -> h3"
