"""The heatmap: its SVG read by an XML parser, and the page rendered by a real headless browser."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from array import array
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from formats_meshes import ERROR, LOSSY, UNREACHABLE, mesh_of, mesh_outcome

from fleet.formats import heatmap, problems, write_artifacts
from fleet.formats.heatmap_cells import blocks, rtt_scale

SVG = "{http://www.w3.org/2000/svg}"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def drawn_cells(path: Path) -> list[ET.Element]:
    root = ET.parse(path).getroot()
    (group,) = [g for g in root.iter(f"{SVG}g") if g.get("id") == "cells"]
    return list(group.iter(f"{SVG}rect"))


def cell_at(cells, kind):
    return [c for c in cells if c.get("class") == f"cell {kind}"]


def test_the_svg_has_a_cell_per_pair_each_state_its_own_fill_and_a_tooltip(tmp_path):
    names = ["h1", "h2", "h3", "h4"]
    mesh = mesh_of(names, {("h1", "h3"): UNREACHABLE, ("h2", "h4"): LOSSY, ("h4", "h1"): ERROR},
                   skip={("h4", "h2")}, mtu={("h3", "h2"): False})
    target = tmp_path / "map.svg"
    write_artifacts([mesh_outcome(mesh)], heatmap=target)
    cells = drawn_cells(target)
    assert len(cells) == 16
    counts = {kind: len(cell_at(cells, kind)) for kind in heatmap.KINDS}
    assert counts == {"ok": 7, "unreachable": 1, "lossy": 1, "mtu": 1, "error": 1, "none": 1,
                      "self": 4, "off": 0}
    (red,) = cell_at(cells, "unreachable")
    assert red.get("fill") == heatmap.STATE_COLOURS["unreachable"]
    assert red.find(f"{SVG}title").text.splitlines()[:2] == [
        "h1 -> h3: unreachable", "tunnel: unreachable, sent 3, received 0, loss 100%"]
    (purple,) = cell_at(cells, "mtu")
    assert "mtu 1480: failed" in purple.find(f"{SVG}title").text
    fills = {kind: {c.get("fill") for c in cell_at(cells, kind)} for kind in heatmap.KINDS}
    assert len(set().union(*fills.values())) == len(heatmap.KINDS) - 1  # no two states look alike
    (ok_title,) = [c.find(f"{SVG}title").text for c in cells
                   if c.find(f"{SVG}title").text.startswith("h2 -> h1:")]
    assert "rtt ms: min 0.1 avg 0.2 max 0.3" in ok_title


def verdict_of(path: Path) -> ET.Element:
    (found,) = [t for t in ET.parse(path).getroot().iter(f"{SVG}text") if t.get("id") == "verdict"]
    return found


def test_the_verdict_stands_above_the_matrix_as_the_run_says_it(tmp_path):
    target = tmp_path / "map.svg"
    cases = {"ok": mesh_of(["h1", "h2"]),
             "not-ok": mesh_of(["h1", "h2", "h3"], mtu={("h1", "h2"): False}),
             "could-not-tell": mesh_of(["h1", "h2", "h3"], skip={("h3", "h1")})}
    for status, mesh in cases.items():
        outcome = mesh_outcome(mesh)
        write_artifacts([outcome], heatmap=target)
        shown = verdict_of(target)
        assert shown.get("data-status") == status == outcome.report.verdict.status.value
        assert shown.text == outcome.report.verdict.text
        root = ET.parse(target).getroot()
        assert root.get("data-verdict") == status


def test_underlay_failures_are_marked_and_the_page_lists_the_diagnosis(tmp_path):
    mesh = mesh_of(["h1", "h2", "h3"], {("h1", "h2"): UNREACHABLE, ("h2", "h1"): UNREACHABLE},
                   underlay=True)
    mesh.columns.u_state[0] = 2  # h1 -> h2: the IPv4 ping was lost too
    target = tmp_path / "map.svg"
    write_artifacts([mesh_outcome(mesh)], heatmap=target)
    root = ET.parse(target).getroot()
    marks = [p for p in root.iter(f"{SVG}path") if p.get("class") == "underlay-failed"]
    assert len(marks) == 1 and marks[0].find(f"{SVG}title").text.startswith("h1 -> h2")
    page = tmp_path / "map.html"
    write_artifacts([mesh_outcome(mesh)], heatmap=page)
    text = page.read_text()
    assert 'id="run-verdict" data-status="not-ok"' in text
    assert '<ul id="diagnosis">' in text and 'data-kind="unreachable"' in text


def luminance(colour: str) -> float:
    """WCAG's relative luminance of #rrggbb."""
    lin = [(v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4)
           for v in (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_ok_colours_are_absolute_bands_far_lighter_than_any_failure(tmp_path):
    assert heatmap.DEFAULT_RTT_THRESHOLDS_MS == (1, 5, 20, 100)
    assert [heatmap.rtt_band(ms) for ms in (0.2, 1.0, 4.9, 20.0, 99.0, 250.0)] == [0, 1, 1, 3, 3, 4]
    # a 20 ms pair has the same colour whatever the rest of the run: 20-100 ms
    for others in ((0.1, 0.2, 0.3, 0.05), (30.0, 40.0, 50.0, 1.0)):
        mesh = mesh_of(["h1", "h2", "h3"])
        for r in range(len(mesh.columns)):
            mesh.columns.rtt[4 * r:4 * r + 4] = array("f", others)
        mesh.columns.rtt[1] = 20.0
        target = tmp_path / "map.svg"
        write_artifacts([mesh_outcome(mesh)], heatmap=target)
        (twenty,) = [c for c in drawn_cells(target)
                     if c.find(f"{SVG}title").text.startswith("h1 -> h2:")]
        assert twenty.get("fill") == heatmap.RTT_SCALE[3]
    ok = [luminance(c) for c in heatmap.RTT_SCALE]
    assert ok == sorted(ok, reverse=True)  # light (fast) to darker (slow)
    failures = [luminance(heatmap.STATE_COLOURS[k])
                for k in ("lossy", "unreachable", "mtu", "error", "self")]
    assert min(ok) > 1.5 * max(failures)


def test_the_rtt_thresholds_are_the_callers(tmp_path):
    mesh = mesh_of(["h1", "h2"])  # both pairs 0.2 ms
    pieces = heatmap.render([mesh_outcome(mesh)], tmp_path / "m.svg", rtt_thresholds_ms=(0.1, 0.15))
    text = "".join(pieces)
    assert text.count(f'fill="{rtt_scale((0.1, 0.15))[2]}" data-t="ok"') == 2
    assert "\u2265 0.15 ms" in text
    with pytest.raises(ValueError, match="increasing"):
        heatmap.render([mesh_outcome(mesh)], tmp_path / "m.svg", rtt_thresholds_ms=(5, 1))


def test_the_top_says_when_how_and_how_many(tmp_path):
    mesh = mesh_of(["h1", "h2", "h3"], mtu={}, underlay=True)
    when = datetime(2025, 3, 1, 12, 30, 5, tzinfo=UTC)
    for name in ("map.svg", "map.html"):
        text = "".join(heatmap.render([mesh_outcome(mesh)], tmp_path / name, generated=when))
        assert "written 2025-03-01 12:30:05 UTC (when this file was written; the run took 2.5 s)" in text
        assert ("3 hosts, every other host; probe fping (asked: auto), count 3, interval 0.2 s, "
                "timeout 1 s, underlay on, mtu 1480") in text


def test_hostile_host_names_stay_text(tmp_path):
    names = ['<script>alert(1)</script>', 'a"b&c\x07', "h3"]
    target = tmp_path / "map.svg"
    write_artifacts([mesh_outcome(mesh_of(names))], heatmap=target)
    root = ET.parse(target).getroot()
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    labels = {t.find(f"{SVG}title").tail for t in root.iter(f"{SVG}text") if t.get("class") == "lab"}
    assert {"<script>alert(1)</script>", 'a"b&c\ufffd', "h3"} <= labels


def test_a_big_mesh_is_drawn_in_blocks_that_take_their_worst_state(tmp_path):
    names = [f"host-{i}" for i in range(400)]
    down = {(src, "host-5"): UNREACHABLE for src in names if src != "host-5"}
    target = tmp_path / "map.svg"
    write_artifacts([mesh_outcome(mesh_of(names, down))], heatmap=target)
    size = heatmap.block_size(400)
    side = -(-400 // size)
    assert size == 3 and side == 134
    cells = drawn_cells(target)
    assert len(cells) == side * side
    assert len(cell_at(cells, "unreachable")) == side  # the column of host-5's block
    assert "host-3 .. host-5" in cell_at(cells, "unreachable")[0].find(f"{SVG}title").text


def test_a_big_mesh_with_groups_is_drawn_by_group(tmp_path):
    names = [f"host-{i}" for i in range(300)] + ["</script><b>x"]
    groups = {name: f"zone-{i % 3}" for i, name in enumerate(names[:300])}  # interleaved
    down = {(src, "host-4"): UNREACHABLE for src in names if src != "host-4"}
    found = blocks(names, groups)
    assert found is not None and found.by_group
    assert found.labels == ["zone-0 (100)", "zone-1 (100)", "zone-2 (100)", "(no group) (1)"]
    assert found.members[1][:3] == [1, 4, 7]
    text = "".join(heatmap.render([mesh_outcome(mesh_of(names, down))], tmp_path / "m.html",
                                  groups=groups))
    start = text.index("<svg xmlns")
    svg_text = text[start:text.index("</svg>", start) + 6]
    cells = [e for e in ET.fromstring(svg_text).iter(f"{SVG}rect") if "cell" in e.get("class", "")]
    assert len(cells) == 16
    assert [c.get("data-rc") for c in cells if c.get("data-t") == "unreachable"] == [
        "0,1", "1,1", "2,1", "3,1"]  # host-4 is in zone-1
    data = text[text.index('id="heatmap-data">') + 18:]
    assert "</script><b>" not in data[:data.index("</script>")]  # the hostile name stays data


def test_the_heatmap_needs_a_mesh_task_and_an_html_or_svg_name():
    assert problems({"heatmap": Path("map.html")}, ["setup", "mesh"]) == []
    assert problems({"heatmap": Path("map.html")}, ["setup"]) == [
        "--heatmap map.html: a heatmap draws a mesh: add the mesh task to the run"]
    assert "is .html or .svg" in problems({"heatmap": Path("map.png")}, ["mesh"])[0]


def chromium(*args: str) -> str:
    """Headless Chromium with no network of its own, in a throwaway profile; its stdout."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
             "--hide-scrollbars", *args],
            capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stdout


def chromium_dom(page: Path, fragment: str = "", size: str = "1280,800") -> str:
    """The page's DOM after its scripts ran, as headless Chromium leaves it (`fragment`: the
    page's state in its address, e.g. "layers=underlay")."""
    return chromium(f"--window-size={size}", "--dump-dom",
                    page.as_uri() + (f"#{fragment}" if fragment else ""))


class DrawnReader(HTMLParser):
    """The attributes of the page's #drawn element (and of any other `id` asked for)."""

    def __init__(self, wanted="drawn"):
        super().__init__()
        self.wanted = wanted
        self.found = None

    def handle_starttag(self, tag, attrs):
        if dict(attrs).get("id") == self.wanted:
            self.found = dict(attrs)


def element(dom: str, wanted: str = "drawn") -> dict:
    reader = DrawnReader(wanted)
    reader.feed(dom)
    assert reader.found is not None, f"no #{wanted}"
    return reader.found


@pytest.mark.skipif(CHROMIUM is None or os.geteuid() != 0,
                    reason="needs Debian's chromium (apt-get install chromium), run as root")
def test_a_real_browser_draws_every_cell_and_the_failing_ones_red(tmp_path):
    names = [f"h{i}" for i in range(1, 12)] + ['<b id="injected">x</b>']
    bad = {("h1", "h7"): UNREACHABLE, ("h2", "h7"): UNREACHABLE, ("h3", "h4"): LOSSY,
           ("h9", "h1"): ERROR}
    page = tmp_path / "map.html"
    write_artifacts([mesh_outcome(mesh_of(names, bad))], heatmap=page)
    dom = chromium_dom(page)
    reader = DrawnReader()
    reader.feed(dom)
    drawn = reader.found
    assert drawn is not None and drawn.get("data-cells") == "144", drawn
    assert json.loads(drawn["data-counts"]) == {"self": 12, "ok": 128, "unreachable": 2, "lossy": 1,
                                                "error": 1}
    fills = json.loads(drawn["data-fills"])
    assert fills["unreachable"] == "rgb(214, 39, 40)"  # heatmap.STATE_COLOURS["unreachable"]
    assert re.fullmatch(r'url\("?#p-lossy"?\)', fills["lossy"])
    assert fills["ok"] != fills["unreachable"]
    assert '<b id="injected">' not in dom  # the hostile name stayed text


def test_the_legend_gives_the_mesh_rtt_as_the_table_does(tmp_path):
    from fleet.mesh.report import render_mesh

    mesh = mesh_of(["h1", "h2", "h3"])
    mesh.columns.replies.update({200: 18})  # microseconds: the six pairs' three replies each
    target = tmp_path / "map.svg"
    write_artifacts([mesh_outcome(mesh)], heatmap=target)
    (shown,) = [t for t in ET.parse(target).getroot().iter(f"{SVG}text")
                if t.get("id") == "rtt-percentiles"]
    assert shown.text == "rtt over every reply: p50 0.200, p90 0.200 ms"  # 18 replies: no p99
    assert "every reply: p50 0.200, p90 0.200;" in render_mesh(mesh)


def faulty_mesh(n: int):
    """n hosts h0..: h1 -> h2 unreachable, h2 -> h3 lossy, h3 -> h0 fails the MTU check, and the
    underlay (IPv4) of h0 -> h1 lost while its tunnel answers."""
    names = [f"h{i}" for i in range(n)]
    mesh = mesh_of(names, {("h1", "h2"): UNREACHABLE, ("h2", "h3"): LOSSY},
                   mtu={("h3", "h0"): False}, underlay=True)
    mesh.columns.u_state[0] = 2  # the first row: h0 -> h1
    return mesh


BROWSER = pytest.mark.skipif(CHROMIUM is None or os.geteuid() != 0,
                             reason="needs Debian's chromium (apt-get install chromium), run as root")


@BROWSER
@pytest.mark.parametrize("hosts", [4, 100, 1000])
def test_a_real_browser_draws_the_layers_and_keeps_the_legend_in_view(tmp_path, hosts):
    page = tmp_path / "map.html"
    write_artifacts([mesh_outcome(faulty_mesh(hosts))], heatmap=page)
    drawn = element(chromium_dom(page))
    cells = int(drawn["data-cells"])
    counts = json.loads(drawn["data-counts"])
    assert drawn["data-layers"] == "tunnel,mtu" and sum(counts.values()) == cells
    if hosts <= heatmap.CELL_HOSTS:
        assert cells == hosts * hosts
        assert counts == {"self": hosts, "unreachable": 1, "lossy": 1, "mtu": 1,
                          "ok": hosts * (hosts - 1) - 3}
    else:
        assert cells == 143 * 143  # blocks of 7
        assert counts == {"unreachable": 1, "ok": cells - 1}  # h0..h6's block: its worst
    for box in ("data-legend", "data-legend-scrolled"):  # at the top, and scrolled to the end
        legend = json.loads(drawn[box])
        assert 0 <= legend["top"] < legend["bottom"] <= json.loads(drawn["data-legend"])["viewport"]
    assert json.loads(drawn["data-legend-scrolled"])["scrolled"] > 0 or hosts == 4

    fragment = "layers=underlay" + ("&block=0,0" if hosts > heatmap.CELL_HOSTS else "")
    dom = chromium_dom(page, fragment)
    drawn = element(dom)
    assert drawn["data-layers"] == "underlay"
    if hosts <= heatmap.CELL_HOSTS:  # the underlay alone: only h0 -> h1 failed
        assert json.loads(drawn["data-counts"]) == {"self": hosts, "unreachable": 1,
                                                    "ok": hosts * (hosts - 1) - 1}
    else:  # the block h0..h6 drawn pair by pair
        drill = element(dom, "drill")
        assert "hidden" not in drill and drill["data-cells"] == "49"
        assert json.loads(drill["data-counts"]) == {"self": 7, "unreachable": 1, "ok": 41}
        dom = chromium_dom(page, "layers=tunnel,mtu&block=0,0")
        assert json.loads(element(dom, "drill")["data-counts"]) == {
            "self": 7, "unreachable": 1, "lossy": 1, "mtu": 1, "ok": 39}


def demo_mesh(n: int):
    """A fleet in zones for the README's pictures: 0.3 ms within a zone, 1.6 ms between zones,
    25 ms to and from the last zone (another region); one host unreachable by every other, one
    losing pings, one pair failing the MTU check, one underlay lost."""
    zones = 3 if n <= 100 else 10
    names = [f"z{i * zones // n}-h{i}" for i in range(n)]
    zone = {name: f"zone-{i * zones // n}" for i, name in enumerate(names)}
    down, lossy = names[n // 2], names[n // 3]
    special = {(src, down): UNREACHABLE for src in names if src != down}
    special.update({(lossy, dst): LOSSY for dst in names if dst not in (lossy, down)})
    mesh = mesh_of(names, special, mtu={(names[-1], names[1]): False}, underlay=True)
    cols = mesh.columns
    for r in range(len(cols)):
        src, dst = zone[names[cols.src[r]]], zone[names[cols.dst[r]]]
        far = f"zone-{zones - 1}" in (src, dst) and src != dst
        cols.rtt[4 * r + 1] = 25.0 if far else 0.3 if src == dst else 1.6
    cols.u_state[1] = 2
    return mesh, zone


if __name__ == "__main__":  # PYTHONPATH=.:tests python3 tests/inproc/test_formats_heatmap.py docs/:
    # the README's pictures
    import sys

    target = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as scratch:
        for n in (4, 100, 1000):
            mesh, zone = demo_mesh(n)
            page = Path(scratch) / f"heatmap-{n}.html"
            pieces = heatmap.render([mesh_outcome(mesh)], page, groups=zone,
                                    generated=datetime(2025, 1, 1, tzinfo=UTC))
            page.write_text("".join(pieces or []), encoding="utf-8")
            chromium("--window-size=1000,720", f"--screenshot={target / f'heatmap-{n}.png'}",
                     page.as_uri())
