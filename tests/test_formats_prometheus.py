"""Prometheus text from synthetic reports, read back by prometheus-client's own parser."""

import os

import pytest
from formats_meshes import ERROR, LOSSY, UNREACHABLE, hosts_outcome, mesh_of, mesh_outcome
from prometheus_client.parser import text_string_to_metric_families

from fleet.formats import prometheus, write, write_artifacts


def samples(path):
    """{(metric name, frozenset of labels): value} and the families' types."""
    found, types = {}, {}
    for family in text_string_to_metric_families(path.read_text()):
        types[family.name] = family.type
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, key
            found[key] = sample.value
    return found, types


def pair(name, src, dst, **extra):
    return (name, frozenset({"task": "mesh", "src": src, "dst": dst, **extra}.items()))


def test_pair_host_and_summary_gauges(tmp_path):
    mesh = mesh_of(["h1", "h2", "h3"], {("h1", "h3"): UNREACHABLE, ("h2", "h3"): LOSSY,
                                        ("h3", "h1"): ERROR, ("h3", "h2"): ERROR},
                   failed_hosts={"h3"})
    target = tmp_path / "fleet.prom"
    write_artifacts([hosts_outcome("setup", {"h1": "changed", "h2": "ok", "h3": "failed"}),
                     mesh_outcome(mesh)], prometheus=target)
    found, types = samples(target)
    assert set(types.values()) == {"gauge"}
    assert found[pair("fleet_mesh_pair_up", "h1", "h2")] == 1
    assert found[pair("fleet_mesh_pair_up", "h1", "h3")] == 0
    assert found[pair("fleet_mesh_pair_loss_ratio", "h1", "h3")] == 1.0
    assert found[pair("fleet_mesh_pair_loss_ratio", "h2", "h3")] == pytest.approx(1 / 3, abs=1e-3)
    assert pair("fleet_mesh_pair_loss_ratio", "h3", "h1") not in found  # could not tell
    assert found[pair("fleet_mesh_pair_rtt_seconds", "h1", "h2", stat="avg")] == pytest.approx(0.0002)
    assert found[pair("fleet_mesh_pair_rtt_seconds", "h2", "h3", stat="max")] == pytest.approx(0.0009)
    assert pair("fleet_mesh_pair_rtt_seconds", "h1", "h3", stat="avg") not in found
    host_up = {dict(k[1])["host"]: v for k, v in found.items() if k[0] == "fleet_mesh_host_up"}
    assert host_up == {"h1": 1, "h2": 1, "h3": 0}
    pairs = {dict(k[1])["state"]: v for k, v in found.items() if k[0] == "fleet_mesh_pairs"}
    assert pairs == {"ok": 2, "lossy": 1, "unreachable": 1, "error": 2}
    assert found[("fleet_mesh_hosts", frozenset({("task", "mesh")}))] == 3
    assert found[("fleet_mesh_duration_seconds", frozenset({("task", "mesh")}))] == 2.5
    setup = {dict(k[1])["host"]: v for k, v in found.items() if k[0] == "fleet_task_host_ok"}
    assert setup == {"h1": 1, "h2": 1, "h3": 0}
    assert found[("fleet_task_hosts", frozenset({("task", "setup"), ("status", "failed")}))] == 1
    assert ("fleet_last_run_timestamp_seconds", frozenset()) in found


def test_label_values_are_escaped(tmp_path):
    names = ['quo"te', "back\\slash", "new\nline"]
    target = tmp_path / "fleet.prom"
    write_artifacts([mesh_outcome(mesh_of(names))], prometheus=target)
    found, _ = samples(target)
    assert found[pair("fleet_mesh_pair_up", 'quo"te', "new\nline")] == 1
    assert found[pair("fleet_mesh_pair_up", "back\\slash", 'quo"te')] == 1
    assert prometheus.label_value('a\\"\n') == 'a\\\\\\"\\n'


def test_the_file_is_replaced_whole_or_left_as_it_was(tmp_path, monkeypatch):
    target = tmp_path / "fleet.prom"
    target.write_text("# the previous run\n")
    outcome = mesh_outcome(mesh_of(["h1", "h2"]))

    def broken(outcomes, path):
        yield "# HELP half of a file\n"
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(prometheus, "render", broken)  # our own module, not a library's
    with pytest.raises(RuntimeError):
        write([outcome], {"prometheus": target})
    assert target.read_text() == "# the previous run\n"
    assert os.listdir(tmp_path) == ["fleet.prom"]  # no temporary file left behind
    monkeypatch.undo()
    write([outcome], {"prometheus": target})
    assert "fleet_mesh_pair_up" in target.read_text()
    assert oct(target.stat().st_mode & 0o777) == "0o644"  # readable by node_exporter's user
