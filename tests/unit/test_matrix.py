import dataclasses
import io
import json
from ipaddress import IPv6Interface
from pathlib import Path

import pytest

from fleet.core.errors import ConnectError
from fleet.mesh.model import HostState, PairState, build_mesh, classify, peer_plan, source_report
from fleet.mesh.ping import PingStats
from fleet.mesh.probe import PingOutcome, ProbeParams
from fleet.mesh.report import MeshJson, mesh_to_json, render_mesh
from fleet.mesh.verdict import judge

PARAMS = ProbeParams()


def outcome(addr, sent=3, received=3, error=None):
    stats = None if error else PingStats(sent, received, rtt_min_ms=0.1 if received else None,
                                         rtt_avg_ms=0.2 if received else None,
                                         rtt_max_ms=0.3 if received else None,
                                         rtt_mdev_ms=0.05 if received else None)
    return PingOutcome(addr, stats, 0 if received else (2 if error else 1), error)


def full_report(hosts, i, configured=True, **special):
    """Host i's report on every other host: ok unless `special` maps a peer name to kwargs."""
    src = hosts[i]
    targets = [(j, h.address_text) for j, h in enumerate(hosts) if j != i]
    outcomes = {h.address_text: outcome(h.address_text, **special.get(h.name, {}))
                for j, h in enumerate(hosts) if j != i}
    tunnel = (IPv6Interface(f"{src.address}/64"),) if configured else ()
    return source_report(i, targets, "fping", tunnel, outcomes)


def mesh_of(hosts, reports, peers=None):
    return build_mesh(hosts, reports, PARAMS, peer_plan(len(hosts), peers), peers)


def test_classification_never_calls_could_not_tell_unreachable():
    assert classify(outcome(None)) is PairState.OK
    assert classify(outcome(None, received=1)) is PairState.LOSSY
    assert classify(outcome(None, received=0)) is PairState.UNREACHABLE
    assert classify(outcome(None, error="connect: Network is unreachable")) is PairState.ERROR


def test_one_failed_host_marks_its_row_error_and_its_column_unreachable(make_hosts):
    hosts = make_hosts({"h1": "172.31.0.11", "h2": "172.31.0.12", "h3": "172.31.0.13"})
    reports = {"h1": full_report(hosts, 0, h3={"received": 0}),
               "h2": full_report(hosts, 1, h3={"received": 0}),
               "h3": ConnectError("h3", "cannot connect to 127.0.0.1:2203: Connection refused")}
    mesh = mesh_of(hosts, reports)
    states = {(p.src, p.dst): p.state for p in mesh.pairs}
    assert states == {("h1", "h2"): PairState.OK, ("h1", "h3"): PairState.UNREACHABLE,
                      ("h2", "h1"): PairState.OK, ("h2", "h3"): PairState.UNREACHABLE,
                      ("h3", "h1"): PairState.ERROR, ("h3", "h2"): PairState.ERROR}
    assert [h.state for h in mesh.hosts] == [HostState.OK, HostState.OK, HostState.ERROR]
    assert mesh.summary() == {"hosts": 3, "pairs": 6, "ok": 2, "lossy": 0, "unreachable": 2,
                              "error": 2}
    assert not judge(mesh).ok
    text = render_mesh(mesh)
    assert "h3 -> *: error, could not probe (unreachable): cannot connect" in text
    assert [h.error_kind for h in mesh.hosts] == [None, None, "unreachable"]
    assert "host-unreachable: * -> h3: unreachable from every source, its own probe failed" in text
    assert "diagnosis: NOT OK: source-cannot-probe (1 host), host-unreachable (1 host)" in text


def test_unconfigured_source_is_noted_but_still_measured(make_hosts):
    hosts = make_hosts({"h1": "172.31.0.11", "h2": "172.31.0.12", "h3": "172.31.0.13"})
    reports = {"h1": full_report(hosts, 0, configured=False, h3={"received": 0}),
               "h2": full_report(hosts, 1), "h3": full_report(hosts, 2)}
    mesh = mesh_of(hosts, reports)
    assert mesh.hosts[0].state is HostState.UNCONFIGURED
    assert "run `fleet run setup`" in mesh.hosts[0].error
    assert mesh.pair("h1", "h2").state is PairState.OK          # measured all the same
    # ...but its silence cannot be blamed on the peer: could not tell, not unreachable
    h1_h3 = mesh.pair("h1", "h3")
    assert h1_h3.state is PairState.ERROR and "source not configured" in h1_h3.error


def test_asymmetric_pair_is_diagnosed(make_hosts):
    hosts = make_hosts({"h1": "172.31.0.11", "h2": "172.31.0.12", "h3": "172.31.0.13"})
    reports = {"h1": full_report(hosts, 0, h2={"received": 0}),
               "h2": full_report(hosts, 1), "h3": full_report(hosts, 2)}
    text = render_mesh(mesh_of(hosts, reports))
    assert ("  asymmetric: h2 -> h1 ok but h1 -> h2 unreachable (asymmetric: check h2's ip6tables"
            in text)
    assert text.count("h1 -> h2") == 1  # the one finding, not also a line for the pair


GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "mesh_report.json"


def golden_mesh(make_hosts):
    """3 hosts: h1 -> h2 ok, h1 -> h3 unreachable, h2 -> h1 lossy, h2 -> h3 ok, h3 could not probe."""
    hosts = make_hosts({"h1": "172.31.0.11", "h2": "172.31.0.12", "h3": "172.31.0.13"})
    reports = {"h1": full_report(hosts, 0, h3={"received": 0}),
               "h2": full_report(hosts, 1, h1={"received": 2}),
               "h3": ConnectError("h3", "cannot connect to 127.0.0.1:2203: Connection refused")}
    return mesh_of(hosts, reports)


def test_mesh_json_report_matches_the_golden_file(make_hosts):
    # tests/golden/mesh_report.json was checked field by field against the README's
    # "JSON reports" section; a change here is a change of the documented format
    stream = io.StringIO()
    MeshJson(golden_mesh(make_hosts), interrupted=False, elapsed_s=1.5).write_json(stream)
    assert json.loads(stream.getvalue()) == json.loads(GOLDEN.read_text())
    assert stream.getvalue().rstrip("\n") == GOLDEN.read_text().rstrip("\n")


def test_streamed_json_of_more_pairs_than_one_batch_parses(make_hosts):
    hosts = make_hosts({f"h{i}": f"172.31.{i // 200}.{i % 200 + 10}" for i in range(101)})
    reports = {h.name: full_report(hosts, i, **({"h7": {"received": 0}} if i == 3 else {}))
               for i, h in enumerate(hosts)}
    mesh = mesh_of(hosts, reports)
    assert mesh.pair_count == 10_100  # the writer batches by 10,000
    stream = io.StringIO()
    MeshJson(mesh, interrupted=False, elapsed_s=2.0).write_json(stream)
    document = json.loads(stream.getvalue())
    assert len(document["pairs"]) == 10_100
    assert [(p["src"], p["dst"]) for p in document["pairs"][:2]] == [("h0", "h1"), ("h0", "h2")]
    assert document["pairs"][-1]["src"] == "h100" and document["pairs"][-1]["dst"] == "h99"
    assert sum(p["state"] == "unreachable" for p in document["pairs"]) == 1
    assert document["summary"]["pairs"] == 10_100 and document["elapsed_s"] == 2.0


def test_the_matrix_stays_readable_for_many_hosts(make_hosts):
    hosts = make_hosts({f"instance-{i:02d}": f"172.31.0.{i + 10}" for i in range(1, 36)})
    reports = {h.name: full_report(hosts, i) for i, h in enumerate(hosts)}
    text = render_mesh(mesh_of(hosts, reports))
    lines = text.splitlines()
    matrix_rows = lines[lines.index(next(line for line in lines if line.startswith("src"))) + 1:][:35]
    assert [row.split()[1] for row in matrix_rows] == [h.name for h in hosts]
    assert all(row.split()[2:].count("-") == 1 for row in matrix_rows)
    assert max(len(row) for row in matrix_rows) <= 140
    assert lines[0].startswith("mesh ALL OK: 35 hosts, 1190 pairs: 1190 ok")


def test_big_meshes_are_summarised_per_host(make_hosts):
    hosts = make_hosts({f"h{i}": f"172.31.{i // 200}.{i % 200 + 10}" for i in range(80)})
    reports = {h.name: full_report(hosts, i, **({"h7": {"received": 0}} if i == 3 else {}))
               for i, h in enumerate(hosts)}
    text = render_mesh(mesh_of(hosts, reports))
    assert "78 of 80 hosts have every pair ok, both ways:" in text
    assert "asymmetric: h7 -> h3 ok but h3 -> h7 unreachable" in text


@pytest.mark.parametrize("n, k", [(10, 3), (100, 10), (7, 6), (50, 49), (2000, 20)])
def test_sampled_plan_probes_k_and_is_probed_by_k(n, k):
    plan = peer_plan(n, k)
    probed_by = [0] * n
    for i, peers in enumerate(plan):
        assert len(peers) == min(k, n - 1) and i not in peers and len(set(peers)) == len(peers)
        for j in peers:
            probed_by[j] += 1
    assert set(probed_by) == {min(k, n - 1)}


def test_sampled_mesh_states_its_coverage(make_hosts):
    hosts = make_hosts({f"h{i}": f"172.31.0.{i + 10}" for i in range(10)})
    plan = peer_plan(10, 3)
    reports = {h.name: source_report(i, [(j, hosts[j].address_text) for j in plan[i]], "fping",
                                     (IPv6Interface(f"{h.address}/64"),),
                                     {hosts[j].address_text: outcome(hosts[j].address_text)
                                      for j in plan[i]})
               for i, h in enumerate(hosts)}
    mesh = build_mesh(hosts, reports, PARAMS, plan, 3)
    assert mesh.pair_count == 30 and judge(mesh).ok
    assert "sampled: 3 peers per host (33.3% of pairs)" in render_mesh(mesh)
    assert mesh_to_json(mesh)["coverage"] == {"peers_per_host": 3, "pairs": 30, "fraction": 0.3333}


def test_streamed_pairs_are_the_pairs_of_the_model_across_batches(make_hosts):
    """Every pair object of the JSON report has a Pair's fields and values, past the writer's
    batches, with loss and RTTs as the parser gave them and errors escaped."""
    hosts = make_hosts({f"h{i}": f"172.31.{i // 200}.{i % 200 + 10}" for i in range(70)})
    special = {"h5": {"received": 1}, "h6": {"received": 0}, "h7": {"error": 'said "no"\n\\'}}
    reports = {h.name: full_report(hosts, i, **special) for i, h in enumerate(hosts)}
    mesh = mesh_of(hosts, reports)
    assert mesh.pair_count > 4096
    pairs = mesh_to_json(mesh)["pairs"]
    assert pairs == [{**dataclasses.asdict(p), "state": p.state.value} for p in mesh.pairs]
    by_pair = {(p["src"], p["dst"]): p for p in pairs}
    lossy = {"src": "h69", "dst": "h5", "state": "lossy", "sent": 3, "received": 1, "loss_pct": 66.7,
             "rtt_min_ms": 0.1, "rtt_avg_ms": 0.2, "rtt_max_ms": 0.3, "rtt_mdev_ms": 0.05,
             "rtt_p50_ms": None, "rtt_p90_ms": None, "rtt_p99_ms": None, "error": None,
             "underlay": None, "mtu": None}
    assert by_pair["h69", "h5"] == lossy and list(by_pair["h69", "h5"]) == list(lossy)  # in order
    assert by_pair["h69", "h6"]["loss_pct"] == 100.0 and by_pair["h69", "h6"]["rtt_avg_ms"] is None
    assert by_pair["h69", "h7"] == {"src": "h69", "dst": "h7", "state": "error", "sent": 0,
                                    "received": 0, "loss_pct": None, "rtt_min_ms": None,
                                    "rtt_avg_ms": None, "rtt_max_ms": None, "rtt_mdev_ms": None,
                                    "rtt_p50_ms": None, "rtt_p90_ms": None, "rtt_p99_ms": None,
                                    "error": 'said "no"\n\\', "underlay": None, "mtu": None}
