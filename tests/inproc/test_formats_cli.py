"""`fleet run ... --junit --prometheus --heatmap` in this process against in-process SSH hosts."""

import xml.etree.ElementTree as ET

from junitparser import JUnitXml
from prometheus_client.parser import text_string_to_metric_families


def test_one_run_writes_all_three_files(inprocess_fleet, tmp_path):
    inprocess_fleet.add_host("h1", "172.31.0.11")
    inprocess_fleet.add_host("h2", "172.31.0.12")
    inprocess_fleet.add_unreachable("h3", "172.31.0.13")
    junit, prom, page = tmp_path / "out.xml", tmp_path / "fleet.prom", tmp_path / "map.svg"
    done = inprocess_fleet.run("setup", "mesh", "--count", "1", "--junit", str(junit),
                               "--prometheus", str(prom), "--prometheus-pairs",
                               "--heatmap", str(page))
    assert done.code == 1, done.err
    suites = {s.name: s for s in JUnitXml.fromfile(str(junit))}
    assert sorted(suites) == ["fleet.mesh", "fleet.setup"]
    assert (suites["fleet.setup"].tests, suites["fleet.setup"].failures) == (3, 1)
    mesh_cases = {c.name: c for c in suites["fleet.mesh"]}
    assert {c.name: c.classname for c in suites["fleet.mesh"]}["h2 -> h3"] == "fleet.mesh.h2"
    assert len(mesh_cases) == 7 and mesh_cases["h1 -> h2"].is_passed  # six pairs and the verdict
    assert not mesh_cases["verdict"].is_passed
    assert not mesh_cases["h3 -> h1"].is_passed  # h3 could not probe: an error case
    report_pairs = {(p["src"], p["dst"]): p["state"] for p in done.report["tasks"][1]["pairs"]}
    up = {(s.labels["src"], s.labels["dst"]): s.value
          for f in text_string_to_metric_families(prom.read_text()) for s in f.samples
          if s.name == "fleet_mesh_pair_up"}
    assert up == {pair: float(state == "ok") for pair, state in report_pairs.items()}
    rects = [r for r in ET.parse(page).getroot().iter("{http://www.w3.org/2000/svg}rect")
             if r.get("class", "").startswith("cell ")]
    assert len(rects) == 9


def test_a_heatmap_without_a_mesh_task_is_refused_before_any_login(inprocess_fleet, tmp_path):
    inprocess_fleet.add_host("h1", "172.31.0.11")
    done = inprocess_fleet.run("setup", "--heatmap", str(tmp_path / "map.html"))
    assert done.code == 2
    assert "--heatmap" in done.err and "add the mesh task" in done.err
    assert inprocess_fleet.logins() == {"h1": 0}


def test_formats_that_do_not_apply_are_skipped_silently(inprocess_fleet, tmp_path):
    inprocess_fleet.add_host("h1", "172.31.0.11")
    junit = tmp_path / "out.xml"
    done = inprocess_fleet.run("setup", "--junit", str(junit))
    assert done.code == 0, done.err
    assert [s.name for s in JUnitXml.fromfile(str(junit))] == ["fleet.setup"]


def test_a_report_file_may_not_overwrite_the_inventory(inprocess_fleet):
    inprocess_fleet.add_host("h1", "172.31.0.11")
    hosts = inprocess_fleet.write_inventory() / "hosts.yaml"
    before = hosts.read_text()
    done = inprocess_fleet.run("setup", "--prometheus", str(hosts))
    assert done.code == 2 and "--prometheus" in done.err and "which this run reads" in done.err
    assert hosts.read_text() == before and inprocess_fleet.logins() == {"h1": 0}
