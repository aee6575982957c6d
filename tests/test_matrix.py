import json
from ipaddress import IPv6Interface

from fleet.matrix import HostState, PairState, SourceProbe, build_mesh, classify
from fleet.ping import PingStats
from fleet.probe import PingOutcome, ProbeParams
from fleet.report import mesh_to_json, render_mesh

PARAMS = ProbeParams()


def outcome(addr, sent=3, received=3, error=None):
    stats = None if error else PingStats(sent, received, rtt_min_ms=0.1 if received else None,
                                         rtt_avg_ms=0.2 if received else None,
                                         rtt_max_ms=0.3 if received else None,
                                         rtt_mdev_ms=0.05 if received else None)
    return PingOutcome(addr, stats, 0 if received else (2 if error else 1), error)


def full_report(src, hosts, **special):
    """Every peer ok unless `special` maps a peer name to outcome kwargs."""
    return SourceProbe((IPv6Interface(f"{src.address}/64"),),
                       {h.address: outcome(h.address, **special.get(h.name, {}))
                        for h in hosts if h is not src})


def test_classification_never_calls_could_not_tell_unreachable():
    assert classify(outcome(None)) is PairState.OK
    assert classify(outcome(None, received=1)) is PairState.LOSSY
    assert classify(outcome(None, received=0)) is PairState.UNREACHABLE
    assert classify(outcome(None, error="connect: Network is unreachable")) is PairState.ERROR


def test_one_failed_host_marks_its_row_error_and_its_column_unreachable(make_hosts):
    hosts = make_hosts({"h1": "172.31.0.11", "h2": "172.31.0.12", "h3": "172.31.0.13"})
    h1, h2, h3 = hosts
    reports = {"h1": full_report(h1, hosts, h3={"received": 0}),
               "h2": full_report(h2, hosts, h3={"received": 0}),
               "h3": "cannot connect to 127.0.0.1:2203: Connection refused"}
    mesh = build_mesh(hosts, reports, "ping", PARAMS)
    states = {(p.src, p.dst): p.state for p in mesh.pairs}
    assert states == {("h1", "h2"): PairState.OK, ("h1", "h3"): PairState.UNREACHABLE,
                      ("h2", "h1"): PairState.OK, ("h2", "h3"): PairState.UNREACHABLE,
                      ("h3", "h1"): PairState.ERROR, ("h3", "h2"): PairState.ERROR}
    assert [h.state for h in mesh.hosts] == [HostState.OK, HostState.OK, HostState.ERROR]
    assert mesh.summary() == {"hosts": 3, "pairs": 6, "ok": 2, "lossy": 0, "unreachable": 2,
                              "error": 2}
    assert not mesh.all_ok
    text = render_mesh(mesh)
    assert "h3 -> *: error, could not probe: cannot connect" in text
    assert "* -> h3: unreachable from every source" in text


def test_unconfigured_source_is_noted_but_still_measured(make_hosts):
    hosts = make_hosts({"h1": "172.31.0.11", "h2": "172.31.0.12"})
    reports = {"h1": SourceProbe((), {hosts[1].address: outcome(hosts[1].address)}),
               "h2": full_report(hosts[1], hosts)}
    mesh = build_mesh(hosts, reports, "ping", PARAMS)
    assert mesh.hosts[0].state is HostState.UNCONFIGURED and "run `fleet run setup`" in mesh.hosts[0].error
    assert mesh.all_ok


def test_asymmetric_pair_is_diagnosed(make_hosts):
    hosts = make_hosts({"h1": "172.31.0.11", "h2": "172.31.0.12", "h3": "172.31.0.13"})
    reports = {"h1": full_report(hosts[0], hosts, h2={"received": 0}),
               "h2": full_report(hosts[1], hosts), "h3": full_report(hosts[2], hosts)}
    text = render_mesh(build_mesh(hosts, reports, "ping", PARAMS))
    assert "h1 -> h2: unreachable, 3 sent, 0 received (100% loss)" in text
    assert "h2 -> h1 ok but h1 -> h2 unreachable (asymmetric" in text


def test_json_schema(make_hosts):
    hosts = make_hosts({"h1": "172.31.0.11", "h2": "172.31.0.12"})
    reports = {"h1": full_report(hosts[0], hosts, h2={"received": 2}),
               "h2": full_report(hosts[1], hosts)}
    document = json.loads(json.dumps(mesh_to_json(build_mesh(hosts, reports, "ping", PARAMS))))
    assert set(document) >= {"hosts", "pairs", "summary", "probe"}
    assert document["hosts"][0] == {"name": "h1", "ipv4": "172.31.0.11",
                                    "address": "fd00:5efe:1ab::5efe:ac1f:b", "state": "ok",
                                    "error": None}
    pair = document["pairs"][0]
    assert set(pair) >= {"src", "dst", "state", "sent", "received", "loss_pct", "rtt_min_ms",
                         "rtt_avg_ms", "rtt_max_ms", "rtt_mdev_ms"}
    assert (pair["state"], pair["loss_pct"]) == ("lossy", 33.3)
    assert document["summary"] == {"hosts": 2, "pairs": 2, "ok": 1, "lossy": 1, "unreachable": 0,
                                   "error": 0}


def test_the_matrix_stays_readable_for_many_hosts(make_hosts):
    hosts = make_hosts({f"instance-{i:02d}": f"172.31.0.{i + 10}" for i in range(1, 36)})
    reports = {h.name: full_report(h, hosts) for h in hosts}
    text = render_mesh(build_mesh(hosts, reports, "ping", PARAMS))
    lines = text.splitlines()
    matrix_rows = lines[lines.index(next(l for l in lines if l.startswith("src"))) + 1:][:35]
    assert [row.split()[1] for row in matrix_rows] == [h.name for h in hosts]
    assert all(row.split()[2:].count("-") == 1 for row in matrix_rows)
    assert max(len(row) for row in matrix_rows) <= 140
    assert text.splitlines()[0].startswith("mesh ALL OK: 35 hosts, 1190 pairs: 1190 ok")
