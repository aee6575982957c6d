"""Prometheus text from synthetic reports, read back by prometheus-client's own parser."""

import os

import pytest
from formats_meshes import ERROR, LOSSY, UNREACHABLE, hosts_outcome, mesh_of, mesh_outcome
from prometheus_client.parser import text_string_to_metric_families

from fleet.formats import prometheus, write, write_artifacts
from fleet.mesh.model import PairState


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
    return (name, frozenset({"src": src, "dst": dst, **extra}.items()))


def host(name, host, direction):
    return (name, frozenset({"host": host, "direction": direction}.items()))


def test_pair_host_and_summary_gauges(tmp_path):
    mesh = mesh_of(["h1", "h2", "h3"], {("h1", "h3"): UNREACHABLE, ("h2", "h3"): LOSSY,
                                        ("h3", "h1"): ERROR, ("h3", "h2"): ERROR},
                   failed_hosts={"h3"})
    target = tmp_path / "fleet.prom"
    write_artifacts([hosts_outcome("setup", {"h1": "changed", "h2": "ok", "h3": "failed"}),
                     mesh_outcome(mesh)], prometheus=target, prometheus_pairs=True)
    found, types = samples(target)
    assert set(types.values()) == {"gauge"}
    assert found[pair("fleet_mesh_pair_up", "h1", "h2")] == 1
    assert found[pair("fleet_mesh_pair_up", "h1", "h3")] == 0
    assert found[pair("fleet_mesh_pair_loss_ratio", "h1", "h3")] == 1.0
    assert found[pair("fleet_mesh_pair_loss_ratio", "h2", "h3")] == pytest.approx(1 / 3, abs=1e-3)
    assert pair("fleet_mesh_pair_loss_ratio", "h3", "h1") not in found  # could not tell
    assert found[pair("fleet_mesh_pair_rtt_avg_seconds", "h1", "h2")] == 0.0002
    assert found[pair("fleet_mesh_pair_rtt_avg_seconds", "h2", "h3")] == 0.0004
    assert pair("fleet_mesh_pair_rtt_avg_seconds", "h1", "h3") not in found
    host_up = {dict(k[1])["host"]: v for k, v in found.items() if k[0] == "fleet_mesh_host_up"}
    assert host_up == {"h1": 1, "h2": 1, "h3": 0}
    pairs = {dict(k[1])["state"]: v for k, v in found.items() if k[0] == "fleet_mesh_pairs"}
    assert pairs == {"ok": 2, "lossy": 1, "unreachable": 1, "error": 2}
    assert found[("fleet_mesh_hosts", frozenset())] == 3
    assert found[("fleet_mesh_duration_seconds", frozenset())] == 2.5
    assert found[("fleet_mesh_loss_ratio", frozenset())] == 0.333  # 33.3%, as the report says
    setup = {dict(k[1])["host"]: v for k, v in found.items() if k[0] == "fleet_task_host_ok"}
    assert setup == {"h1": 1, "h2": 1, "h3": 0}
    assert found[("fleet_task_hosts", frozenset({("task", "setup"), ("status", "failed")}))] == 1
    stamps = {dict(k[1])["task"] for k in found if k[0] == "fleet_task_last_run_timestamp_seconds"}
    assert stamps == {"setup", "mesh"}
    # no label that cannot vary: the mesh's metrics have no task, the setup's keep theirs
    assert all("task" not in dict(k[1]) for k in found if k[0].startswith("fleet_mesh_"))


def test_label_values_are_escaped(tmp_path):
    names = ['quo"te', "back\\slash", "new\nline"]
    target = tmp_path / "fleet.prom"
    write_artifacts([mesh_outcome(mesh_of(names))], prometheus=target, prometheus_pairs=True)
    found, _ = samples(target)
    assert found[host("fleet_mesh_host_pairs_ok", "new\nline", "in")] == 2
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
    assert "fleet_mesh_host_pairs_ok" in target.read_text()
    assert oct(target.stat().st_mode & 0o777) == "0o644"  # readable by node_exporter's user


def test_per_host_aggregates_by_default_judged_as_the_verdict_judges_pairs(tmp_path):
    mesh = mesh_of(["h1", "h2", "h3"], {("h1", "h3"): UNREACHABLE, ("h2", "h3"): LOSSY,
                                        ("h3", "h1"): ERROR}, mtu={("h2", "h1"): False})
    target = tmp_path / "fleet.prom"
    write_artifacts([mesh_outcome(mesh)], prometheus=target)
    found, _ = samples(target)
    assert not any(k[0].startswith("fleet_mesh_pair_") for k in found)
    assert found[host("fleet_mesh_host_pairs", "h1", "out")] == 2
    assert found[host("fleet_mesh_host_pairs_ok", "h1", "out")] == 1  # h1 -> h3 unreachable
    assert found[host("fleet_mesh_host_pairs_ok", "h1", "in")] == 0  # h2's mtu failed, h3's error
    assert found[host("fleet_mesh_host_pairs_ok", "h3", "in")] == 0
    assert found[host("fleet_mesh_host_loss_ratio", "h3", "in")] == 0.667
    assert found[host("fleet_mesh_host_loss_ratio", "h1", "in")] == 0  # h3's error left out
    assert found[host("fleet_mesh_host_loss_ratio", "h3", "out")] == 0  # h3 -> h2 answered
    ok = sum(v for k, v in found.items() if k[0] == "fleet_mesh_host_pairs_ok"
             and dict(k[1])["direction"] == "out")
    assert ok == found[("fleet_mesh_pairs", frozenset({("state", "ok")}))] - 1  # the mtu failure


def test_the_mesh_rtt_is_its_percentiles_over_every_reply_rounded_to_the_microsecond(tmp_path):
    mesh = mesh_of(["h1", "h2", "h3"], {("h1", "h2"): {"state": PairState.OK, "sent": 3, "received": 3,
                                                        "rtt": (8.1, 8.936999999, 9.9, 0.1)}})
    mesh.columns.replies.update({8937: 90, 12000: 9, 30500: 1})  # microseconds
    target = tmp_path / "fleet.prom"
    write_artifacts([mesh_outcome(mesh)], prometheus=target, prometheus_pairs=True)
    found, _ = samples(target)
    assert found[("fleet_mesh_rtt_p50_seconds", frozenset())] == 0.008937
    assert found[("fleet_mesh_rtt_p90_seconds", frozenset())] == 0.008937
    assert found[("fleet_mesh_rtt_p99_seconds", frozenset())] == 0.012
    assert mesh.rtt_percentiles()["p50"] == 8.937  # the figure of the table and the JSON
    text = target.read_text()
    assert "fleet_mesh_pair_rtt_avg_seconds{src=\"h1\",dst=\"h2\"} 0.008937\n" in text
    assert "99999" not in text and "00001" not in text and "e-" not in text


def test_setup_and_mesh_files_in_one_textfile_directory_do_not_collide(tmp_path):
    setup, mesh = tmp_path / "setup.prom", tmp_path / "mesh.prom"
    write_artifacts([hosts_outcome("setup", {"h1": "ok"})], prometheus=setup)
    write_artifacts([mesh_outcome(mesh_of(["h1", "h2"]))], prometheus=mesh)
    series = [{(sample.name, frozenset(sample.labels.items()))
               for family in text_string_to_metric_families(path.read_text())
               for sample in family.samples} for path in (setup, mesh)]
    assert not series[0] & series[1]  # the collector exposes both files' series side by side
    stamps = {dict(k[1])["task"] for found in series for k in found
              if k[0] == "fleet_task_last_run_timestamp_seconds"}
    assert stamps == {"setup", "mesh"}


def test_a_thousand_host_mesh_stays_scrapeable(tmp_path):
    names = [f"host-{i:04d}" for i in range(1000)]
    target = tmp_path / "fleet.prom"
    write_artifacts([mesh_outcome(mesh_of(names, {(names[0], names[1]): UNREACHABLE}))],
                    prometheus=target)
    found, _ = samples(target)
    per_host = [k for k in found if "host" in dict(k[1])]
    assert len(per_host) == 7 * 1000  # up, and pairs, pairs ok and loss both ways
    assert len(found) < 7 * 1000 + 30
    assert target.stat().st_size < 1_000_000
    assert found[host("fleet_mesh_host_pairs_ok", names[0], "out")] == 998
    assert found[("fleet_mesh_pairs", frozenset({("state", "unreachable")}))] == 1
