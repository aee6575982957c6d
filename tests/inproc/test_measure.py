"""The mesh's extra measurements below the SSH layer: the underlay and MTU rounds of the probe
script (run for real on loopback, and in a namespace of the test's own whose loopback has a small
MTU), the per-pair and mesh-wide percentiles, and the columns and JSON of both rounds."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import uuid
from collections import Counter
from ipaddress import IPv6Interface

import pytest

from fleet.core.errors import ConnectError
from fleet.mesh.fping import stats_from_times
from fleet.mesh.model import (
    MtuCheck,
    PairState,
    Underlay,
    build_mesh,
    peer_plan,
    source_report,
)
from fleet.mesh.percentiles import counter_percentiles, micros, sample_percentiles
from fleet.mesh.probe import MeshProbe, PingOutcome, ProbeParams
from fleet.mesh.report import MeshJson, render_mesh

PROBE = MeshProbe()
PROBERS = {"fping": "fping", "python": "python3", "ping": "ping"}


# --- percentiles -----------------------------------------------------------------------------

def test_nearest_rank_percentiles_need_a_sample_above_their_rank():
    hundred = [float(v) for v in range(100, 0, -1)]  # 1..100 ms, unsorted
    assert sample_percentiles(hundred) == (50.0, 90.0, 99.0)
    assert sample_percentiles(hundred[1:]) == (50.0, 90.0, None)  # 1..99: p99 would be the max
    assert sample_percentiles([3.0, 1.0]) == (1.0, None, None)    # p50 of two: the smaller
    assert sample_percentiles([0.5]) == (None, None, None)        # one reply: only the max
    assert sample_percentiles([]) == (None, None, None)
    assert sample_percentiles([float(v) for v in range(1, 11)])[1] == 9.0  # ceil(0.9 * 10) = 9th


def test_mesh_percentiles_from_counts_are_those_of_the_sorted_samples():
    samples = [round(0.1 + (i * 37 % 101) / 1000, 3) for i in range(2500)]
    assert counter_percentiles(micros(samples)) == dict(zip(
        ("p50", "p90", "p99"), sample_percentiles(samples)))
    assert counter_percentiles(Counter()) == {"p50": None, "p90": None, "p99": None}
    assert counter_percentiles(Counter({412: 12})) == {"p50": 0.412, "p90": 0.412, "p99": None}


# --- the script ------------------------------------------------------------------------------

def test_underlay_and_mtu_rounds_follow_the_tunnel_round_in_one_script():
    params = ProbeParams(count=4, interval=0.25, timeout=1, underlay=True, mtu_size=1480)
    script = PROBE.script(["fd00::1", "fd00::2"], params, ["10.9.0.1", "10.9.0.2"])
    assert re.findall(r"^set -- (.*)$", script, re.M) == [
        "fd00::1 fd00::2", "10.9.0.1 10.9.0.2", "fd00::1 fd00::2"]
    fpings = re.findall(r"^  (fping .*) 2>&1$", script, re.M)
    assert fpings == ['fping -6 -q -C 4 -p 250 -i 1 -t 1000 "$@"',
                      'fping -4 -q -C 4 -p 250 -i 1 -t 1000 "$@"',
                      'fping -6 -q -C 2 -p 250 -i 1 -t 1000 -M -b 1432 "$@"']
    assert re.findall(r'python3 -c "\$fp" (.*) "\$@"', script) == [
        "4 0.25 1", "4 0.25 1 -4", "2 0.25 1 -s 1432 -M"]
    assert "ping -4 -n -q -c 4 -i 0.25 -W 1 10.9.0.1" in script
    assert "ping -6 -n -q -c 2 -i 0.25 -W 1 -M do -s 1432 fd00::1" in script
    # no prober for the tunnel ends the script before the other rounds
    assert script.index("|| exit 4") < script.index("@@fleet underlay")


def test_each_option_costs_about_one_more_ping_round():
    base = ProbeParams(count=3, interval=0.2, timeout=1)
    assert ProbeParams(count=3, interval=0.2, timeout=1, underlay=True).expected_seconds(10) == \
        pytest.approx(2 * 1.4 + 10 * 0.004)
    assert ProbeParams(count=3, interval=0.2, timeout=1, mtu_size=1480).expected_seconds(10) == \
        pytest.approx(base.expected_seconds(10) + 1.2 + 10 * 0.002)
    with pytest.raises(ValueError):
        ProbeParams(mtu_size=1200)  # below IPv6's minimum MTU
    with pytest.raises(ValueError):
        PROBE.script(["fd00::1"], ProbeParams(underlay=True), [])


@pytest.mark.parametrize("method", ["fping", "python", "ping"])
def test_every_method_runs_all_three_rounds_on_loopback(method):
    if shutil.which(PROBERS[method]) is None:
        pytest.skip(f"needs {PROBERS[method]}")
    params = ProbeParams(count=3, interval=0.1, timeout=0.5, method=method, underlay=True,
                         mtu_size=1480)
    script = PROBE.script(["::1"], params, ["127.0.0.1"])
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    answer = PROBE.parse(done.stdout, ["::1"], ["127.0.0.1"], mtu=True)
    assert answer.method == method and answer.notes == ()
    tunnel, underlay, mtu = answer.outcomes["::1"], answer.underlay["127.0.0.1"], answer.mtu["::1"]
    assert (tunnel.stats.sent, tunnel.stats.received) == (3, 3)
    assert (underlay.stats.sent, underlay.stats.received) == (3, 3)
    assert (mtu.stats.sent, mtu.stats.received) == (2, 2)
    # fping and fleet's prober print every reply; ping's -q summary does not
    assert len(tunnel.stats.replies_ms) == (0 if method == "ping" else 3)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and ip")
@pytest.mark.parametrize("method", ["fping", "python", "ping"])
def test_a_path_mtu_below_the_tunnel_fails_the_full_size_pings_only(method):
    """In a namespace of this test's own whose loopback has MTU 1400: 1480-byte don't-fragment
    pings to ::1 cannot be sent (each prober says it its own way), the small ones pass."""
    if shutil.which(PROBERS[method]) is None:
        pytest.skip(f"needs {PROBERS[method]}")
    netns = f"fleet-mtu-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "mtu", "1400", "up"], check=True)
        params = ProbeParams(count=2, interval=0.1, timeout=0.5, method=method, mtu_size=1480)
        done = subprocess.run(["ip", "netns", "exec", netns, "sh", "-c",
                               PROBE.script(["::1"], params)],
                              capture_output=True, text=True, timeout=30)
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=True)
    answer = PROBE.parse(done.stdout, ["::1"], mtu=True)
    assert answer.method == method, done.stdout
    assert answer.outcomes["::1"].stats.received == 2
    full = answer.mtu["::1"]
    assert (full.stats.sent, full.stats.received) == (2, 0)
    pairs = source_report(0, [(1, "::1")], method, (), answer.outcomes, mtu=answer.mtu).pairs
    assert pairs.mtu[0] == 0  # failed, not "could not tell"
    # fping -M and ping -q -M do say nothing of a send refused as too big; fleet's prober does
    said = {"fping": None, "python": "Message too long", "ping": None}[method]
    assert pairs.mtu_errors.get(0) == said


# --- the model and the report ----------------------------------------------------------------

def outcome(addr, sent=3, received=3, times=None, error=None):
    if error:
        return PingOutcome(addr, None, 2, error)
    times = times or ([0.2] * received + [None] * (sent - received))
    return PingOutcome(addr, stats_from_times(times), 0)


def reports_of(hosts, *, underlay_lost=frozenset(), mtu_lost=frozenset(),
               tunnel_lost=frozenset(), failed=()):
    """Each host's report on every other host: all ok, except the (src, dst) pairs named."""
    reports = {}
    for i, src in enumerate(hosts):
        if src.name in failed:
            reports[src.name] = ConnectError(src.name, "cannot connect: Connection refused")
            continue
        peers = [(j, h) for j, h in enumerate(hosts) if j != i]
        lost = lambda which, h, s=src.name: (s, h.name) in which  # noqa: E731
        tunnel = {h.address_text: outcome(h.address_text, received=0) if lost(tunnel_lost, h)
                  else outcome(h.address_text, times=[0.3, 0.1, 0.2]) for _, h in peers}
        under = {str(h.ipv4): outcome(str(h.ipv4), received=0 if lost(underlay_lost, h) else 3)
                 for _, h in peers}
        full = {h.address_text: outcome(h.address_text, 2, 0 if lost(mtu_lost | tunnel_lost, h)
                                        else 2) for _, h in peers}
        reports[src.name] = source_report(
            i, [(j, h.address_text) for j, h in peers], "fping",
            (IPv6Interface(f"{src.address}/64"),), tunnel,
            underlay=([str(h.ipv4) for _, h in peers], under), mtu=full)
    return reports


PARAMS = ProbeParams(underlay=True, mtu_size=1480)


def test_underlay_and_mtu_are_kept_per_pair_and_read_back(make_hosts):
    hosts = make_hosts({"h1": "172.31.0.11", "h2": "172.31.0.12", "h3": "172.31.0.13"})
    reports = reports_of(hosts, underlay_lost={("h1", "h2")}, mtu_lost={("h2", "h3")},
                         tunnel_lost={("h3", "h1")})
    mesh = build_mesh(hosts, reports, PARAMS, peer_plan(3, None))
    row = {(hosts[mesh.columns.src[r]].name, hosts[mesh.columns.dst[r]].name): r
           for r in range(mesh.pair_count)}
    assert mesh.underlay_state_at(row["h1", "h2"]) is PairState.UNREACHABLE
    assert mesh.underlay_state_at(row["h2", "h1"]) is PairState.OK
    assert mesh.mtu_ok_at(row["h2", "h3"]) is False and mesh.mtu_ok_at(row["h1", "h3"]) is True
    assert mesh.mtu_ok_at(row["h3", "h1"]) is None  # no small ping either: cannot tell
    assert mesh.pair("h1", "h2").underlay == Underlay(PairState.UNREACHABLE, 3, 0, 100.0, None)
    assert mesh.pair("h2", "h1").underlay == Underlay(PairState.OK, 3, 3, 0.0, 0.2)
    assert mesh.pair("h3", "h1").mtu == MtuCheck(None, 1480, "not even the small pings got through")
    ok = mesh.pair("h1", "h2")
    assert (ok.rtt_p50_ms, ok.rtt_p90_ms, ok.rtt_p99_ms) == (0.2, None, None)
    # 5 pairs of 0.1, 0.2, 0.3: 15 replies
    assert mesh.rtt_percentiles() == {"p50": 0.2, "p90": 0.3, "p99": None}
    text = render_mesh(mesh)
    assert "mtu 1480 (don't fragment): 4 ok, 1 failed, 1 could not tell" in text
    assert "underlay (ping -4 to the tunnel IPv4): 5 ok, 0 lossy, 1 unreachable, 0 error" in text
    assert "(probe fping: 3 x 0.2 s, wait 1 s, underlay, mtu 1480)" in text
    assert "every reply: p50 0.200, p90 0.300" in text


def test_not_measured_is_none_everywhere(make_hosts):
    hosts = make_hosts({"h1": "172.31.0.11", "h2": "172.31.0.12"})
    plain = {h.name: source_report(i, [(1 - i, hosts[1 - i].address_text)], "fping",
                                   (IPv6Interface(f"{h.address}/64"),),
                                   {hosts[1 - i].address_text: outcome(hosts[1 - i].address_text)})
             for i, h in enumerate(hosts)}
    mesh = build_mesh(hosts, plain, ProbeParams(), peer_plan(2, None))
    assert mesh.underlay_state_at(0) is None and mesh.mtu_ok_at(0) is None
    assert mesh.underlay_counts() is None and mesh.mtu_counts() is None
    assert mesh.pair("h1", "h2").underlay is None and mesh.pair("h1", "h2").mtu is None
    assert "underlay" not in render_mesh(mesh) and "mtu 1480" not in render_mesh(mesh)


def test_a_source_that_could_not_probe_could_not_tell_the_underlay_or_the_mtu(make_hosts):
    hosts = make_hosts({"h1": "172.31.0.11", "h2": "172.31.0.12", "h3": "172.31.0.13"})
    mesh = build_mesh(hosts, reports_of(hosts, failed={"h3"}), PARAMS, peer_plan(3, None))
    pair = mesh.pair("h3", "h1")
    assert pair.underlay.state is PairState.ERROR and "source failed" in pair.underlay.error
    assert pair.mtu.ok is None and "source failed" in pair.mtu.error


def test_json_of_both_rounds_is_streamed_with_the_pair_schema(make_hosts):
    hosts = make_hosts({"h1": "172.31.0.11", "h2": "172.31.0.12", "h3": "172.31.0.13"})
    reports = reports_of(hosts, underlay_lost={("h1", "h2")}, mtu_lost={("h2", "h3")})
    mesh = build_mesh(hosts, reports, PARAMS, peer_plan(3, None))
    stream = io.StringIO()
    MeshJson(mesh, interrupted=False, elapsed_s=1.0).write_json(stream)
    document = json.loads(stream.getvalue())
    assert document["probe"]["underlay"] is True and document["probe"]["mtu_size"] == 1480
    pairs = {(p["src"], p["dst"]): p for p in document["pairs"]}
    assert pairs["h1", "h2"]["underlay"] == {"state": "unreachable", "sent": 3, "received": 0,
                                             "loss_pct": 100.0, "rtt_avg_ms": None, "error": None}
    assert pairs["h2", "h3"]["mtu"] == {"ok": False, "size": 1480, "error": None}
    assert pairs["h1", "h3"]["mtu"] == {"ok": True, "size": 1480, "error": None}
    assert (pairs["h1", "h3"]["rtt_p50_ms"], pairs["h1", "h3"]["rtt_p90_ms"]) == (0.2, None)
    assert document["summary"]["rtt_ms"] == {"p50": 0.2, "p90": 0.3, "p99": None}
    assert document["summary"]["underlay"] == {"ok": 5, "lossy": 0, "unreachable": 1, "error": 0}
    assert document["summary"]["mtu"] == {"ok": 5, "failed": 1, "unknown": 0}
    # every pair object: the fields of a Pair, in order
    from fleet.mesh.model import PAIR_FIELDS
    assert all(list(p) == list(PAIR_FIELDS) for p in document["pairs"])


@pytest.mark.skipif(shutil.which("python3") is None, reason="needs python3")
def test_fleets_prober_stops_once_every_ping_is_answered():
    # as fping does: the wait for replies (--timeout) is only spent on peers that are silent
    import time

    params = ProbeParams(count=2, interval=0.1, timeout=5, method="python")
    started = time.monotonic()
    done = subprocess.run(["sh", "-c", PROBE.script(["::1"], params)], capture_output=True,
                          text=True, timeout=30)
    assert time.monotonic() - started < 2.5, done.stdout
    assert PROBE.parse(done.stdout, ["::1"]).outcomes["::1"].stats.received == 2


@pytest.mark.skipif(shutil.which("fping") is None, reason="needs fping")
def test_a_later_round_whose_prober_fails_leaves_the_tunnel_round_standing(tmp_path):
    # An fping that cannot do IPv4 (exit 4, as without /etc/protocols' "icmp"), forced: the
    # script still succeeds, the tunnel's answers stand, the underlay pairs say why they have none
    real = shutil.which("fping")
    (tmp_path / "fping").write_text(f'#!/bin/sh\n[ "$1" = -4 ] && exit 4\nexec {real} "$@"\n')
    (tmp_path / "fping").chmod(0o755)
    params = ProbeParams(count=2, interval=0.1, timeout=0.5, method="fping", underlay=True)
    done = subprocess.run(["sh", "-c", PROBE.script(["::1"], params, ["127.0.0.1"])],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stdout
    answer = PROBE.parse(done.stdout, ["::1"], ["127.0.0.1"])
    assert answer.outcomes["::1"].stats.received == 2
    assert answer.notes == ("underlay: fping failed with exit status 4",)
    assert answer.underlay["127.0.0.1"].stats is None
    assert "fping failed with exit status 4" in answer.underlay["127.0.0.1"].error
