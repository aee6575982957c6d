"""The mesh's extra measurements and the diagnosis they feed, on real kernels (the lab's QEMU
guests), driven by the CLI.

With protocol 41 dropped for one guest on the bridge, its tunnel pairs fail while `--underlay`
(the same sources pinging the guests' tunnel IPv4, outside the tunnel) says the underlay is fine;
with the bridge-side tap of one guest at MTU 1400, small pings pass while `--mtu` (don't-fragment
pings that fill the tunnel MTU) fails that guest's pairs, and only those. Each run checks that
every source still got one SSH command (one login each, the report's one probe per host). The
diagnosis names the fault each time: `tunnel-blocked`, `mtu-blackhole`, and `host-down` for a guest
that was stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import wait_for
from labtools import fleet, fleet_json, lab_view

from fleet.lab import check_prerequisites

GUESTS = ["h1", "h2", "h3"]
PROBLEMS = ["needs root"] if os.geteuid() != 0 else check_prerequisites()
if shutil.which("nft") is None:
    PROBLEMS = [*PROBLEMS, "needs nft (nftables)"]
pytestmark = [pytest.mark.skipif(bool(PROBLEMS), reason="; ".join(PROBLEMS) or "ready")]


@pytest.fixture(scope="module")
def lab(lab, tmp_path_factory):
    """Three guests of the shared lab (h1..h3, h4 out of sight) with fleet's sit1, as after
    `fleet run setup`."""
    view = lab_view(lab, len(GUESTS), tmp_path_factory.mktemp("measure"))
    done = fleet(view, "run", "setup")
    assert done.returncode == 0, done.stdout + done.stderr
    return view


def in_lab(lab, *command: str) -> None:
    subprocess.run(["ip", "netns", "exec", lab.netns, *command], check=True, capture_output=True)


def drop_protocol_41(lab, tap: str | None) -> None:
    """The security-group analogue on the lab's bridge: drop 6in4 to and from one guest's tap
    (None: remove the rule)."""
    subprocess.run(["ip", "netns", "exec", lab.netns, "nft", "delete", "table", "bridge",
                    "fleetmeasure"], capture_output=True)
    if tap:
        subprocess.run(["ip", "netns", "exec", lab.netns, "nft", "-f", "-"], check=True, text=True,
                       input=f'table bridge fleetmeasure {{\n chain c {{\n  type filter hook forward '
                             f'priority 0;\n  iifname "{tap}" ip protocol 41 drop\n'
                             f'  oifname "{tap}" ip protocol 41 drop\n }}\n}}\n')


def by_pair(report):
    return {(p["src"], p["dst"]): p for p in report["pairs"]}


def findings(report):
    return {f["kind"]: f for f in report["diagnosis"]}


def test_without_the_options_nothing_more_is_measured(lab, tmp_path):
    done, report = fleet_json(lab, tmp_path, "run", "mesh", "--count", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["probe"]["underlay"] is False and report["probe"]["mtu_size"] is None
    assert all(p["underlay"] is None and p["mtu"] is None for p in report["pairs"])
    assert report["summary"]["underlay"] is None and report["summary"]["mtu"] is None


def test_protocol_41_dropped_fails_the_tunnel_while_the_underlay_answers(lab, tmp_path):
    drop_protocol_41(lab, "tap2")
    try:
        done, report = fleet_json(lab, tmp_path, "run", "mesh", "--underlay", "--count", "3")
    finally:
        drop_protocol_41(lab, None)
    assert done.returncode == 1, done.stdout + done.stderr
    assert report["probe"]["underlay"] is True
    assert [h["state"] for h in report["hosts"]] == ["ok"] * 3
    for (src, dst), pair in by_pair(report).items():
        assert pair["state"] == ("unreachable" if "h2" in (src, dst) else "ok"), (src, dst)
        underlay = pair["underlay"]
        assert underlay["state"] == "ok", (src, dst, underlay)  # IPv4 itself is fine
        assert (underlay["sent"], underlay["received"], underlay["loss_pct"]) == (3, 3, 0.0)
        assert underlay["rtt_avg_ms"] > 0 and underlay["error"] is None
    assert report["summary"]["underlay"] == {"ok": 6, "lossy": 0, "unreachable": 0, "error": 0}
    assert "underlay (ping -4 to the tunnel IPv4): 6 ok" in done.stdout
    found = findings(report)
    assert list(found) == ["tunnel-blocked"], report["diagnosis"]
    assert found["tunnel-blocked"]["hosts"] == ["h2"] and "protocol 41" in found["tunnel-blocked"]["text"]
    assert report["verdict"]["text"] == "NOT OK: tunnel-blocked (1 host)"
    assert "tunnel-blocked: " in done.stdout


def test_an_mtu_black_hole_fails_the_full_size_pings_of_that_guest_only(lab, tmp_path):
    files = {"junit": tmp_path / "mtu.xml", "prometheus": tmp_path / "mtu.prom",
             "heatmap": tmp_path / "mtu.svg"}
    options = [arg for name, path in files.items() for arg in (f"--{name}", path)]
    in_lab(lab, "ip", "link", "set", "tap3", "mtu", "1400")
    try:
        done, report = fleet_json(lab, tmp_path, "run", "mesh", "--mtu", "--underlay", "--count", "2",
                                  "--prometheus-pairs", *options)
    finally:
        in_lab(lab, "ip", "link", "set", "tap3", "mtu", "1500")
    assert done.returncode == 1, done.stdout + done.stderr  # small pings ok, full-size ones not
    assert report["probe"]["mtu_size"] == 1480
    found = findings(report)
    assert list(found) == ["mtu-blackhole"], report["diagnosis"]
    assert found["mtu-blackhole"]["hosts"] == ["h3"] and found["mtu-blackhole"]["pairs"] == 4
    for (src, dst), pair in by_pair(report).items():
        assert pair["state"] == "ok", (src, dst, pair)
        assert pair["mtu"]["ok"] is ("h3" not in (src, dst)), (src, dst, pair["mtu"])
        assert pair["mtu"]["size"] == 1480
    assert report["summary"]["mtu"] == {"ok": 2, "failed": 4, "unknown": 0}
    assert report["verdict"]["status"] == "not-ok"
    mtu_failed = {pair for pair, p in by_pair(report).items() if p["mtu"]["ok"] is False}
    assert_every_file_says_not_ok(files, mtu_failed)
    mtu_run = tmp_path / "mtu.json"
    mtu_run.write_text(json.dumps(report))

    # with the tap as it was, every full-size ping passes again
    done, report = fleet_json(lab, tmp_path, "run", "mesh", "--mtu", "--underlay", "--count", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(p["mtu"]["ok"] is True and p["underlay"]["state"] == "ok" for p in report["pairs"])
    assert report["verdict"]["text"] == "ALL OK" and report["diagnosis"] == []
    healthy = tmp_path / "ok.json"
    healthy.write_text(json.dumps(report))

    # the baseline gate: the MTU failures are new failures; a host gone is one too
    gate = fleet_report("--baseline", healthy, mtu_run)
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "FAIL mtu: 4 pair(s) fail the MTU check that did not in the baseline" in gate.stdout
    done, two = fleet_json(lab, tmp_path, "run", "mesh", "--mtu", "--count", "2", "-l", "h1,h2")
    assert done.returncode == 0, done.stdout + done.stderr
    partial = tmp_path / "two.json"
    partial.write_text(json.dumps(two))
    gate = fleet_report("--baseline", healthy, partial)
    assert gate.returncode == 1 and "FAIL hosts-gone: 1 host(s)" in gate.stdout, gate.stdout
    assert fleet_report("--baseline", healthy, partial, "--allow-hosts-gone").returncode == 0


def fleet_report(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleet", "report", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def assert_every_file_says_not_ok(files, mtu_failed) -> None:
    """The JUnit, Prometheus and heatmap files of a run with an MTU black hole, read back by
    independent readers: each says what the exit code said."""
    from junitparser import Failure, JUnitXml
    from prometheus_client.parser import text_string_to_metric_families

    (suite,) = JUnitXml.fromfile(str(files["junit"]))
    failing = {case.name for case in suite if case.result and isinstance(case.result[0], Failure)}
    assert failing == {f"{s} -> {d}" for s, d in mtu_failed} | {"verdict"}
    for case in suite:
        if case.name in failing - {"verdict"}:
            assert case.result[0].type == "mtu" and "mtu-blackhole" in case.result[0].text
            assert "underlay (IPv4 ping of the peer's tunnel endpoint): ok" in case.result[0].text
    samples = [(s.name, s.labels, s.value)
               for f in text_string_to_metric_families(files["prometheus"].read_text()) for s in f.samples]
    assert ("fleet_task_ok", {"task": "mesh"}, 0.0) in samples
    assert {(labels["src"], labels["dst"]) for name, labels, value in samples
            if name == "fleet_mesh_pair_mtu_ok" and value == 0} == mtu_failed
    root = ET.parse(files["heatmap"]).getroot()
    assert root.get("data-verdict") == "not-ok"
    drawn = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("class") == "cell mtu"]
    assert len(drawn) == len(mtu_failed)


def test_one_host_selected_is_answered_at_once_and_not_green(lab, tmp_path):
    done = fleet(lab, "run", "mesh", "-l", "h1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "a mesh needs at least 2" in done.stderr and "Traceback" not in done.stderr


def gone(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def test_a_stopped_guest_is_host_down_tunnel_and_underlay_both(lab, tmp_path):
    # Runs last in this module: h3 stays down until the next module's reset boots it again.
    guest = next(g for g in lab.guests if g.name == "h3")
    os.kill(guest.pid, 9)
    wait_for(lambda: gone(guest.pid), "h3's QEMU to be gone", timeout=10)
    done, report = fleet_json(lab, tmp_path, "run", "mesh", "--underlay", "--count", "2",
                              "--connect-timeout", "5")
    assert done.returncode == 1, done.stdout + done.stderr
    for (src, dst), pair in by_pair(report).items():
        if dst == "h3":
            assert (pair["state"], pair["underlay"]["state"]) == ("unreachable", "unreachable")
        elif src == "h3":
            assert pair["state"] == "error"
    found = findings(report)
    assert list(found) == ["source-cannot-probe", "host-down"], report["diagnosis"]
    assert found["host-down"]["hosts"] == ["h3"] and found["source-cannot-probe"]["hosts"] == ["h3"]
