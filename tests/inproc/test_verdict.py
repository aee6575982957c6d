"""The contract: one verdict, rendered by every output. Each fault of the lab's catalogue (as the
mesh it produces) is written into every format, each format is read back by an independent
reader (junitparser, prometheus_client's parser, an XML parser, json), and each one's verdict
must equal the exit code's. A new format joins this test."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from formats_meshes import ERROR, LOSSY, UNREACHABLE, mesh_of, mesh_outcome
from junitparser import JUnitXml
from prometheus_client.parser import text_string_to_metric_families

from fleet import cli
from fleet.formats import write_artifacts
from fleet.mesh.model import STATES, HostState, Mesh, PairState
from fleet.mesh.report import MeshJson
from fleet.mesh.verdict import Status, judge

NAMES = ["h1", "h2", "h3", "h4"]
SVG = "{http://www.w3.org/2000/svg}"


def _with_underlay(mesh: Mesh, state_of) -> Mesh:
    """Set each pair's underlay (IPv4 ping) state from state_of(src, dst)."""
    c = mesh.columns
    for r in range(len(c)):
        if STATES[c.state[r]] is PairState.ERROR:  # the source could not probe: nor the underlay
            c.set_underlay_error(r, "source failed")
            c.u_sent[r] = c.u_received[r] = 0
            continue
        state = state_of(mesh.hosts[c.src[r]].name, mesh.hosts[c.dst[r]].name)
        c.u_state[r] = STATES.index(state)
        c.u_sent[r], c.u_received[r] = 3, 3 if state is PairState.OK else 0
    return mesh


def _pairs_of(host: str, state: dict) -> dict:
    return {(a, b): state for a in NAMES for b in NAMES if a != b and host in (a, b)}


def _row_of(host: str) -> dict:
    """A source that could not probe: its row could not tell, as build_mesh makes it."""
    return {(host, b): ERROR for b in NAMES if b != host}


def _host_down() -> Mesh:
    mesh = mesh_of(NAMES, {**_pairs_of("h2", UNREACHABLE), **_row_of("h2")}, failed_hosts={"h2"},
                   underlay=True)
    return _with_underlay(mesh, lambda s, d: PairState.UNREACHABLE if "h2" in (s, d) else PairState.OK)


def _sshd_down() -> Mesh:
    return mesh_of(NAMES, _row_of("h2"), failed_hosts={"h2"})


def _unconfigured() -> Mesh:
    mesh = mesh_of(NAMES)
    hosts = list(mesh.hosts)
    hosts[2] = hosts[2].__class__(hosts[2].name, hosts[2].ipv4, hosts[2].address,
                                  HostState.UNCONFIGURED, "sit1 does not carry its address",
                                  probe="fping")
    mesh.hosts = tuple(hosts)
    return mesh


# The lab's fault catalogue (docs/lab.md), as the meshes they produce, with the verdict each must get.
FAULTS = {
    "healthy": (lambda: mesh_of(NAMES, underlay=True, mtu={}), Status.OK),
    "tunnel-blocked": (lambda: _with_underlay(mesh_of(NAMES, _pairs_of("h2", UNREACHABLE), underlay=True),
                                              lambda s, d: PairState.OK), Status.NOT_OK),
    "lossy": (lambda: mesh_of(NAMES, _pairs_of("h2", LOSSY)), Status.NOT_OK),
    "mtu-blackhole": (lambda: mesh_of(NAMES, mtu={k: False for k in _pairs_of("h2", {})}),
                      Status.NOT_OK),
    "host-down": (_host_down, Status.NOT_OK),
    "sshd-down": (_sshd_down, Status.COULD_NOT_TELL),
    "unconfigured-but-answering": (_unconfigured, Status.OK),
    "one-host": (lambda: mesh_of(["h1"]), Status.COULD_NOT_TELL),
    "no-host": (lambda: mesh_of([]), Status.COULD_NOT_TELL),
    "pair-missing": (lambda: mesh_of(NAMES, skip={("h3", "h1")}), Status.COULD_NOT_TELL),
    "mtu-could-not-tell": (lambda: mesh_of(NAMES, mtu={("h1", "h2"): None}), Status.COULD_NOT_TELL),
}


def _save(mesh: Mesh, path: Path) -> Path:
    stream = io.StringIO()
    MeshJson(mesh, interrupted=False, elapsed_s=1.0).write_json(stream)
    path.write_text(stream.getvalue())
    return path


def _report_exit(*argv: object) -> int:
    return cli.main(["report", *map(str, argv)])


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_format_renders_the_verdict_of_the_exit_code(fault, tmp_path, capsys):
    make, expected = FAULTS[fault]
    outcome = mesh_outcome(make())
    report = outcome.report
    ok = report.exit_code == 0
    assert report.verdict.status is expected, report.verdict.text
    assert ok == (expected is Status.OK)

    # the table and the JSON report
    assert report.render().startswith(f"mesh {report.verdict.word}:")
    document = report.to_json().as_dict()
    assert document["verdict"]["status"] == expected.value and document["verdict"]["ok"] is ok

    # JUnit: a green suite exactly when the run is green
    junit, prom, heat = tmp_path / "out.xml", tmp_path / "out.prom", tmp_path / "out.svg"
    write_artifacts([outcome], junit=junit, prometheus=prom, heatmap=heat)
    (suite,) = JUnitXml.fromfile(str(junit))
    assert (suite.failures + suite.errors == 0) == ok
    verdict_case = next(case for case in suite if case.name == "verdict")
    assert verdict_case.is_passed == ok

    # Prometheus: the run's gauges say it, and an alert on them fires exactly when it is not ok
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(prom.read_text()) for s in family.samples}
    assert samples[("fleet_task_ok", (("task", "mesh"),))] == float(ok)
    for status in Status:
        assert samples[("fleet_mesh_verdict", (("status", status.value),))] == \
            float(status is expected)

    # the heatmap
    root = ET.parse(heat).getroot()
    assert root.get("data-verdict") == expected.value
    (shown,) = [t for t in root.iter(f"{SVG}text") if t.get("id") == "verdict"]
    assert shown.text == report.verdict.text

    # `fleet report` on the saved run, and against a healthy baseline of the same hosts
    saved = _save(report.mesh, tmp_path / "run.json")
    assert _report_exit(saved) == report.exit_code
    baseline = _save(mesh_of(NAMES, underlay=True, mtu={}), tmp_path / "healthy.json")
    assert (_report_exit("--baseline", baseline, saved) == 0) == ok
    capsys.readouterr()


def test_a_saved_report_with_no_host_or_a_missing_pair_is_not_ok(tmp_path, capsys):
    for mesh, said in ((mesh_of([]), "too-few-hosts"), (mesh_of(["h1", "h2", "h3"],
                                                               skip={("h2", "h3")}), "not-measured")):
        path = _save(mesh, tmp_path / "run.json")
        assert _report_exit(path) == 1
        out = capsys.readouterr().out
        assert out.startswith("mesh COULD NOT TELL") and said in out
    out_of_three = _save(mesh_of(["h1", "h2", "h3"], skip={("h2", "h3"), ("h3", "h1"), ("h1", "h3"),
                                                          ("h3", "h2")}), tmp_path / "two.json")
    _report_exit(out_of_three)
    out = capsys.readouterr().out
    assert "2 pairs of 6 promised" in out and "None peers" not in out
    assert "4 pairs that a full mesh promised are not in the results" in out


def test_the_baseline_gate_fails_on_a_new_mtu_failure_a_pair_gone_and_a_host_gone(tmp_path, capsys):
    healthy = _save(mesh_of(NAMES, mtu={}), tmp_path / "ok.json")
    cases = {
        "mtu": (mesh_of(NAMES, mtu={("h1", "h2"): False}), "--allow-mtu-failures",
                "FAIL mtu: 1 pair(s) fail the MTU check that did not in the baseline"),
        "unmeasured": (mesh_of(NAMES, mtu={}, skip={("h1", "h2")}), "--allow-unmeasured",
                       "FAIL unmeasured:"),
        "hosts-gone": (mesh_of(NAMES[:3], mtu={}), "--allow-hosts-gone",
                       "FAIL hosts-gone: 1 host(s) of the baseline are not in the run"),
        "new-pair-failing": (mesh_of(NAMES + ["h5"], {("h5", "h1"): UNREACHABLE}, mtu={}),
                             "--allow-new-failures",
                             "FAIL new-failures: 1 pair(s) not in the baseline do not answer"),
    }
    for name, (mesh, allow, said) in cases.items():
        current = _save(mesh, tmp_path / f"{name}.json")
        capsys.readouterr()
        assert _report_exit("--baseline", healthy, current) == 1, name
        out = capsys.readouterr().out
        assert said in out, out
        assert _report_exit("--baseline", healthy, current, allow) == 0, name
        capsys.readouterr()
    # a pair already failing the MTU check in the baseline does not fail the job
    broken = _save(mesh_of(NAMES, mtu={("h1", "h2"): False}), tmp_path / "broken.json")
    assert _report_exit("--baseline", broken, broken) == 0


def test_a_limit_does_not_pass_what_it_does_not_measure(tmp_path, capsys):
    mtu = _save(mesh_of(NAMES, mtu={("h1", "h2"): False}), tmp_path / "mtu.json")
    assert _report_exit(mtu, "--max-loss-pct", "5") == 1
    assert "FAIL mtu: 1 pair(s) fail the MTU check" in capsys.readouterr().out
    assert _report_exit(mtu, "--max-loss-pct", "5", "--allow-mtu-failures") == 0


def test_one_host_selected_is_refused_before_any_host_is_touched(inprocess_fleet):
    for name, ipv4 in (("h1", "172.31.0.11"), ("h2", "172.31.0.12")):
        inprocess_fleet.add_host(name, ipv4)
    done = inprocess_fleet.run("mesh", "-l", "h1")
    assert done.code == 2 and done.report is None
    assert "mesh: 1 host(s) selected (h1): a mesh needs at least 2" in done.err
    assert inprocess_fleet.logins() == {"h1": 0, "h2": 0}


def test_the_verdict_is_judged_once_and_kept(tmp_path):
    report = mesh_outcome(mesh_of(NAMES)).report
    assert report.verdict is report.verdict and judge(report.mesh) == report.verdict
