"""The heatmap of a real run: the blocks of a big mesh are the hosts' inventory groups (from the
inventory through the JSON report to `fleet report`), and --heatmap-rtt-ms sets the legend's bands.

The mesh is `fleet run mesh` (the CLI as a subprocess) against benchmarks.simserver: one asyncssh
server on loopback that plays 160 hosts and answers each probe as a configured host would, so
every SSH session is real and no packet leaves loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fleet.formats.heatmap import CELL_HOSTS

REPO = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"
HOSTS = 160
ZONES = ("zone-a", "zone-b", "zone-c", "zone-d")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """The simulation server with 160 loopback addresses, and an inventory of 160 hosts in four
    groups, interleaved (host i in ZONES[i % 4]), every host also in the group `all-hosts`."""
    sys.path.insert(0, str(REPO))
    import fleet.ssh  # noqa: F401, I001  (first: its filter of asyncssh's deprecation warnings)
    from benchmarks.simserver import sim_address, sim_user
    from benchmarks.simulate import PREFIX, SimServerProcess, sim_ipv4

    from fleet.inventory import write_inventory

    work = tmp_path_factory.mktemp("sim")
    server = SimServerProcess(work, "none", 0.0, HOSTS)
    try:
        keys = work / "keys"
        hosts = {f"h{i:03d}": {"hostname": sim_address(i), "port": server.port,
                               "username": sim_user(sim_ipv4(i)), "data": {"ipv4": sim_ipv4(i)},
                               "groups": [ZONES[i % len(ZONES)], "all-hosts"]}
                 for i in range(HOSTS)}
        inventory = write_inventory(
            work / "inventory", hosts,
            {"data": {"isatap_prefix": PREFIX},
             "connection_options": {"asyncssh": {"extras": {
                 "client_keys": [str(keys / "client_key")], "known_hosts": str(keys / "known_hosts")}}}},
            {name: {} for name in (*ZONES, "all-hosts")})
        yield inventory
    finally:
        server.stop()


def fleet(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "fleet", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def cells(svg_text: str) -> list[ET.Element]:
    return [e for e in ET.fromstring(svg_text).iter(f"{SVG}rect") if "cell" in e.get("class", "")]


def svg_of_page(page: str) -> str:
    start = page.index("<svg xmlns")
    return page[start:page.index("</svg>", start) + 6]


def test_a_run_and_its_report_draw_a_big_mesh_by_the_hosts_first_inventory_group(simulated, tmp_path):
    assert HOSTS > CELL_HOSTS  # blocks, not a cell per pair
    run = fleet("run", "mesh", "-i", str(simulated), "--count", "1", "--json", str(tmp_path / "r.json"),
                "--heatmap", str(tmp_path / "run.svg"), "--no-progress", cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["hosts"][5]["groups"] == ["zone-b", "all-hosts"]  # the report carries them
    drawn = (tmp_path / "run.svg").read_text()
    labels = [f"{zone} (40)" for zone in ZONES]
    assert cells(drawn) and len(cells(drawn)) == 16  # 4 x 4 blocks, one per pair of groups
    assert all(label in drawn for label in labels)
    assert "all-hosts" not in drawn  # the first group only
    # fleet report draws the same blocks from the saved report alone
    shown = fleet("report", str(tmp_path / "r.json"), "--heatmap", str(tmp_path / "report.html"),
                  cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    page = svg_of_page((tmp_path / "report.html").read_text())
    assert len(cells(page)) == 16 and all(label in page for label in labels)


def test_the_rtt_bands_of_the_option_reach_the_legend(simulated, tmp_path):
    run = fleet("run", "mesh", "-i", str(simulated), "-l", "h00*", "--count", "1",
                "--json", str(tmp_path / "r.json"), "--heatmap", str(tmp_path / "run.html"),
                "--heatmap-rtt-ms", "0.02,0.05,2.5", "--no-progress", cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    page = (tmp_path / "run.html").read_text()
    for band in ("&lt; 0.02 ms", "0.02-0.05 ms", "0.05-2.5 ms", "\u2265 2.5 ms"):
        assert band in page, band
    assert "1-5 ms" not in page  # not the default bands
    shown = fleet("report", str(tmp_path / "r.json"), "--heatmap", str(tmp_path / "again.svg"),
                  "--heatmap-rtt-ms", "3,30", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    legend = (tmp_path / "again.svg").read_text()
    assert "&lt; 3 ms" in legend and "3-30 ms" in legend and "\u2265 30 ms" in legend


@pytest.mark.parametrize("command", ["run", "report"])
@pytest.mark.parametrize("value, says", [
    ("5,1", "increasing"), ("1,fast", "'fast' is not a number"), ("0,1", "above 0"),
    ("1,nan", "not a finite number"), ("", "is not a number")])
def test_bad_rtt_bands_are_a_usage_error_naming_the_option(tmp_path, command, value, says):
    golden = REPO / "tests" / "golden" / "mesh_report.json"
    before = ["run", "mesh"] if command == "run" else ["report", str(golden)]
    done = fleet(*before, "--heatmap", str(tmp_path / "m.html"), f"--heatmap-rtt-ms={value}",
                 cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "--heatmap-rtt-ms" in done.stderr and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "m.html").exists()


def test_the_rtt_bands_without_a_heatmap_are_a_usage_error(tmp_path):
    golden = REPO / "tests" / "golden" / "mesh_report.json"
    done = fleet("report", str(golden), "--heatmap-rtt-ms", "1,2", cwd=tmp_path)
    assert done.returncode == 2
    assert "--heatmap-rtt-ms" in done.stderr and "--heatmap FILE" in done.stderr
