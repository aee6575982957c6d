"""`fleet watch` on the lab's QEMU guests, through two faults injected and removed mid-run: protocol
41 dropped for one guest on the lab's bridge (its tunnel pairs break and recover: kind `tunnel`),
then SSH to another guest refused (the host is down over SSH, its pairs are a gap, `not-measured`,
while the tunnel towards it keeps answering; the watcher reconnects when SSH is back). The history
and the timeline drawn from it show each break and each recovery with its kind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import wait_for
from labtools import fleet

from fleet.lab import check_prerequisites

GUESTS = ["h1", "h2", "h3", "h4"]
PROBLEMS = ["needs root"] if os.geteuid() != 0 else check_prerequisites()
if shutil.which("nft") is None:
    PROBLEMS = [*PROBLEMS, "needs nft (nftables)"]
pytestmark = [pytest.mark.skipif(bool(PROBLEMS), reason="; ".join(PROBLEMS) or "ready")]
SVG = "{http://www.w3.org/2000/svg}"


def nft_table(lab, family: str, name: str, chain: str) -> None:
    """Load (or with an empty `chain`, remove) a table of the lab's namespace."""
    subprocess.run(["ip", "netns", "exec", lab.netns, "nft", "delete", "table", family, name],
                   capture_output=True)
    if chain:
        subprocess.run(["ip", "netns", "exec", lab.netns, "nft", "-f", "-"], check=True, text=True,
                       input=f"table {family} {name} {{\n chain c {{\n{chain}\n }}\n}}\n")


def drop_protocol_41(lab, tap: str | None) -> None:
    """The security-group analogue on the lab's bridge (None: removed)."""
    nft_table(lab, "bridge", "fleetwatch", "" if tap is None else
              f'  type filter hook forward priority 0;\n  iifname "{tap}" ip protocol 41 drop\n'
              f'  oifname "{tap}" ip protocol 41 drop')


def refuse_ssh(lab, ipv4: str | None) -> None:
    """SSH to the guest refused, connections open reset: from the lab's own side, where the
    forwarder relays each login (None: removed)."""
    nft_table(lab, "inet", "fleetwatchssh", "" if ipv4 is None else
              f"  type filter hook output priority 0;\n  ip daddr {ipv4} tcp dport 22 reject with tcp reset")


def query(db, sql, *values):
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql, values).fetchall()
    finally:
        connection.close()


def rounds(db) -> int:
    try:
        return query(db, "SELECT count(*) FROM rounds")[0][0]
    except sqlite3.Error:
        return 0


def changes(db, sql_where: str, *values) -> int:
    try:
        return query(db, f"SELECT count(*) FROM changes WHERE {sql_where}", *values)[0][0]
    except sqlite3.Error:
        return 0


def test_watch_records_a_tunnel_fault_and_a_host_gone_with_their_recoveries(lab, tmp_path):
    done = fleet(lab, "run", "setup")
    assert done.returncode == 0, done.stdout + done.stderr
    db = tmp_path / "history.sqlite"
    h4 = next(g for g in lab.guests if g.name == "h4")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "fleet", "watch", "-i", str(lab.inventory_dir), "--history", str(db),
         "--every", "2", "--count", "2", "--interval", "0.2", "--connect-timeout", "4",
         "--command-timeout", "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: rounds(db) >= 2, "two rounds", timeout=60)
        drop_protocol_41(lab, "tap2")
        try:
            wait_for(lambda: changes(db, "kind = 'tunnel' AND after = 'unreachable'") >= 6,
                     "h2's six pairs broken", timeout=60)
        finally:
            drop_protocol_41(lab, None)
        wait_for(lambda: changes(db, "kind = 'tunnel' AND after = 'ok'") >= 6, "h2's pairs back",
                 timeout=60)
        refuse_ssh(lab, h4.ipv4)
        try:
            wait_for(lambda: changes(db, "subject = 'host' AND after = 'down'") >= 1, "h4 down",
                     timeout=60)
            gone = rounds(db)
            wait_for(lambda: rounds(db) > gone, "a round more with h4 down", timeout=60)
        finally:
            refuse_ssh(lab, None)
        wait_for(lambda: changes(db, "subject = 'host' AND after = 'ok'") >= 1, "h4 back", timeout=60)
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=60)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait(timeout=10)
        drop_protocol_41(lab, None)
        refuse_ssh(lab, None)
    assert watcher.returncode == -signal.SIGTERM, out + err  # stopped as systemd expects: by the signal
    assert "stopped by SIGTERM after" in err

    report = tmp_path / "report.json"
    timeline = tmp_path / "timeline.svg"
    shown = subprocess.run([sys.executable, "-m", "fleet", "report", "--history", str(db), "--json",
                            str(report), "--heatmap", str(timeline)], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stdout + shown.stderr  # the last round is ok again
    incidents = json.loads(report.read_text())["incidents"]
    tunnel = {i["name"] for i in incidents if i["kind"] == "tunnel"}
    assert tunnel == {f"{a} -> {b}" for a in GUESTS for b in GUESTS if a != b and "h2" in (a, b)}
    assert all(not i["ongoing"] and i["state"] in ("lossy", "unreachable")  # lossy: a round it began in
               for i in incidents if i["kind"] == "tunnel")
    [host_down] = [i for i in incidents if i["subject"] == "host"]
    assert (host_down["name"], host_down["kind"], host_down["state"], host_down["ongoing"]) == (
        "h4", "host-down", "down", False)
    gap = {i["name"]: i for i in incidents if i["kind"] == "not-measured"}
    assert set(gap) == {"h4 -> h1", "h4 -> h2", "h4 -> h3"}  # its own pairs: a gap, never loss
    assert all(i["broke_round"] == host_down["broke_round"] for i in gap.values())
    # the tunnel towards h4 kept answering while SSH to it was refused
    assert query(db, "SELECT DISTINCT p.state FROM pair_results p JOIN hosts d ON d.id = p.dst "
                 "WHERE d.name = 'h4' AND p.round >= ? AND p.round < ?",
                 host_down["broke_round"], host_down["recovered_round"]) == [("ok",)]

    root = ET.parse(timeline).getroot()
    rows = {g.get("data-name"): {r.get("data-state") for r in g.iter(f"{SVG}rect")}
            for g in root.iter(f"{SVG}g") if g.get("class") == "row"}
    assert rows["h4"] == {"ok", "down"}
    assert rows["h4 -> h1"] == {"ok", "not-measured"}
    assert rows["h1 -> h2"] == {"ok", "unreachable"}
    assert "h1 -> h3" not in rows  # never failed: not drawn
