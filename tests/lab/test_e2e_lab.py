"""End to end on real kernels: the lab's QEMU guests (kernel with sit), driven by the `fleet` CLI.

setup -> mesh all ok -> setup again changes nothing -> setup, then mesh, over kept connections
(--persist) -> drift is repaired -> one guest stopped (also with kept connections) ->
mesh marks exactly that guest's row and column, exit 1 -> teardown leaves no sit1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from labtools import fleet, fleet_json, on_guest
from ruamel.yaml import YAML

from fleet.lab import check_prerequisites, stop_guest

GUESTS = ["h1", "h2", "h3", "h4"]
PROBLEMS = ["needs root"] if os.geteuid() != 0 else check_prerequisites()
pytestmark = [pytest.mark.skipif(bool(PROBLEMS), reason="; ".join(PROBLEMS) or "ready")]


def test_the_whole_story(lab, tmp_path):
    done, report = fleet_json(lab, tmp_path, "run", "setup")
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["summary"] == {"hosts": 4, "ok": 0, "changed": 4, "failed": 0}
    link = json.loads(on_guest(lab, "h1", "ip -j -d link show dev sit1").stdout)[0]
    assert link["linkinfo"]["info_data"]["isatap"] is True
    assert link["linkinfo"]["info_data"]["local"] == "172.31.0.11" and link["mtu"] == 1480

    done, mesh = fleet_json(lab, tmp_path, "run", "mesh")
    assert done.returncode == 0, done.stdout + done.stderr
    summary = mesh["summary"]
    assert {k: summary[k] for k in ("hosts", "pairs", "ok", "lossy", "unreachable", "error")} == {
        "hosts": 4, "pairs": 12, "ok": 12, "lossy": 0, "unreachable": 0, "error": 0}
    assert summary["rtt_ms"]["p50"] > 0 and summary["underlay"] is None and summary["mtu"] is None
    assert mesh["verdict"]["text"] == "ALL OK" and mesh["diagnosis"] == []
    assert {h["state"] for h in mesh["hosts"]} == {"ok"}
    assert mesh["hosts"][0]["address"] == "fd00:5efe:1ab::5efe:ac1f:b"

    done, again = fleet_json(lab, tmp_path, "run", "setup")
    assert done.returncode == 0
    assert again["summary"] == {"hosts": 4, "ok": 4, "changed": 0, "failed": 0}

    # An inventory written by hand in the documented format drives the same guests.
    hand = tmp_path / "by-hand"
    hand.mkdir()
    generated = YAML(typ="safe").load((lab.inventory_dir / "defaults.yaml").read_text())
    extras = generated["connection_options"]["asyncssh"]["extras"]
    (hand / "hosts.yaml").write_text("".join(
        f"web-{g.name}:\n  hostname: 127.0.0.1\n  port: {g.ssh_port}\n  groups: [lab-vpc]\n"
        f"  data:\n    ipv4: {g.ipv4}\n" for g in lab.guests))
    (hand / "groups.yaml").write_text('lab-vpc:\n  data:\n    isatap_prefix: "fd00:5efe:1ab::/64"\n')
    (hand / "defaults.yaml").write_text(
        "username: root\nconnection_options:\n  asyncssh:\n    extras:\n"
        f"      client_keys: [{extras['client_keys'][0]}]\n      known_hosts: {extras['known_hosts']}\n")
    done = subprocess.run([sys.executable, "-m", "fleet", "run", "setup", "mesh", "-i", hand,
                           "--json", "-"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    setup_report, mesh_report = json.loads(done.stdout)["tasks"]
    assert setup_report["summary"]["ok"] == 4 and mesh_report["summary"]["ok"] == 12

    # Kept connections, as a CI job would use them: setup in one run, mesh in the next.
    kept = {**os.environ, "FLEET_PERSIST_DIR": str(tmp_path / "persist")}
    done = fleet(lab, "run", "setup", "--persist", "120", env=kept)
    assert done.returncode == 0, done.stdout + done.stderr
    done = fleet(lab, "run", "mesh", "--persist", "120", "-v", env=kept)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 connection(s) reused" in done.stderr

    # Drift: h2's address gone and link down, h3's tunnel (still carrying fleet's mark) made a
    # plain sit tunnel. Dry run says, then repair.
    on_guest(lab, "h2", "ip addr flush dev sit1 scope global; ip link set sit1 down")
    on_guest(lab, "h3", "ip link del sit1; ip tunnel add sit1 mode sit local 172.31.0.13; "
             "ip link set dev sit1 alias fleet-isatap")
    done, dry = fleet_json(lab, tmp_path, "run", "setup", "--dry-run")
    assert dry["summary"]["changed"] == 2
    assert on_guest(lab, "h2", "ip -j addr show dev sit1 scope global").stdout.count("fd00") == 0
    done, repaired = fleet_json(lab, tmp_path, "run", "setup")
    changed = {h["name"]: h["result"]["changes"] for h in repaired["hosts"] if h["changed"]}
    assert set(changed) == {"h2", "h3"}
    assert changed["h2"] == ["add address fd00:5efe:1ab::5efe:ac1f:c/64", "set link up"]
    assert changed["h3"][0].startswith("remove sit1")

    stop_guest("h4", workdir=lab.workdir)
    done, broken = fleet_json(lab, tmp_path, "run", "mesh")
    assert done.returncode == 1
    for pair in broken["pairs"]:
        involved = "h4" in (pair["src"], pair["dst"])
        assert (pair["state"] != "ok") == involved, pair
    assert {p["state"] for p in broken["pairs"] if p["src"] == "h4"} == {"error"}
    assert {p["state"] for p in broken["pairs"] if p["dst"] == "h4"} == {"unreachable"}
    assert "h4 -> *: error, could not probe" in done.stdout
    # The same over kept connections: the one to the stopped guest fails that guest alone.
    try:
        done = fleet(lab, "run", "mesh", "--count", "1", "--persist", "120", env=kept)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "h4 -> *: error, could not probe" in done.stdout
        assert "mesh NOT OK: 4 hosts, 12 pairs: 6 ok, 0 lossy, 3 unreachable, 3 error" in done.stdout
    finally:
        stopped = subprocess.run([sys.executable, "-m", "fleet", "persist", "stop"], env=kept,
                                 capture_output=True, text=True, timeout=30)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr

    done, gone = fleet_json(lab, tmp_path, "run", "teardown")
    assert done.returncode == 1  # h4 is down, so its teardown failed; the others went on
    assert [h["name"] for h in gone["hosts"] if h["changed"]] == ["h1", "h2", "h3"]
    for guest in ("h1", "h2", "h3"):
        assert on_guest(lab, guest, "ip link show dev sit1").exit_status != 0
    done, again = fleet_json(lab, tmp_path, "run", "teardown", "--limit", "h1,h2,h3")
    assert done.returncode == 0 and again["summary"]["changed"] == 0
