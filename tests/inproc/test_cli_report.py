"""`fleet report` run in this process (fleet.cli.main) on saved reports: no inventory, no host,
no SSH. The saved mesh shown again, the JSON emitted again, comparisons, gates and exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from meshes import mesh

from fleet import cli
from fleet.mesh.model import PairState
from fleet.mesh.report import MeshJson

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "mesh_report.json"
NAMES = ["h1", "h2", "h3"]


def fleet(capsys, *argv):
    capsys.readouterr()
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def saved(tmp_path, name, m, **extra):
    path = tmp_path / name
    path.write_text(json.dumps(MeshJson(m, **extra).as_dict()))
    return path


def test_report_shows_the_saved_table_and_returns_the_runs_exit_code(capsys):
    code, out, err = fleet(capsys, "report", GOLDEN)
    assert code == 1 and err == ""
    assert out.startswith("mesh NOT OK: 3 hosts, 6 pairs: 2 ok, 1 lossy, 1 unreachable, 2 error")
    assert "unreachable: 1 pair unreachable over the tunnel: h1 -> h3" in out
    assert "3 h3      E E -" in out


def test_report_of_an_ok_run_is_0_and_of_an_interrupted_one_130(tmp_path, capsys):
    assert fleet(capsys, "report", saved(tmp_path, "ok.json", mesh(NAMES)))[0] == 0
    code, out, _ = fleet(capsys, "report", saved(tmp_path, "cut.json", mesh(NAMES), interrupted=True))
    assert code == 130 and "this run was interrupted" in out


def test_report_json_to_stdout_emits_the_saved_document_and_the_table_to_stderr(capsys):
    code, out, err = fleet(capsys, "report", GOLDEN, "--json", "-")
    assert code == 1
    assert json.loads(out) == json.loads(GOLDEN.read_text())
    assert err.startswith("mesh NOT OK")


def test_report_json_to_a_file_refuses_to_overwrite_its_input(tmp_path, capsys):
    path = saved(tmp_path, "run.json", mesh(NAMES))
    before = path.read_text()
    code, _, err = fleet(capsys, "report", path, "--json", path)
    assert code == 2 and "which this command reads" in err and path.read_text() == before
    code, out, _ = fleet(capsys, "report", path, "--json", tmp_path / "again.json")
    assert code == 0 and out.startswith("mesh ALL OK")
    assert json.loads((tmp_path / "again.json").read_text())["summary"]["ok"] == 6


@pytest.mark.parametrize("text, message", [
    ("{", "not JSON: Expecting property name"),
    ('{"task": "setup", "hosts": []}', "field 'task': not a mesh report (task 'setup')"),
])
def test_a_bad_file_is_exit_2_naming_it(tmp_path, capsys, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    code, out, err = fleet(capsys, "report", path)
    assert code == 2 and out == ""
    assert err.startswith(f"fleet: error: {path}: ") and message in err


def test_a_missing_file_and_gates_that_need_a_baseline_are_exit_2(tmp_path, capsys):
    code, _, err = fleet(capsys, "report", tmp_path / "none.json")
    assert code == 2 and "none.json: No such file or directory" in err
    code, _, err = fleet(capsys, "report", GOLDEN, "--max-rtt-increase-pct", "10")
    assert code == 2 and "--max-rtt-increase-pct compares with an earlier run" in err
    code, _, err = fleet(capsys, "report", GOLDEN, "--max-loss-pct", "101")
    assert code == 2 and "must be between 0 and 100" in err


def test_baseline_new_failure_fails_and_is_shown(tmp_path, capsys):
    old = saved(tmp_path, "old.json", mesh(NAMES))
    new = saved(tmp_path, "new.json", mesh(NAMES, {("h1", "h3"): {"state": PairState.UNREACHABLE}}))
    code, out, _ = fleet(capsys, "report", "--baseline", old, new)
    assert code == 1
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert f"baseline {old}: ALL OK, 3 hosts, 6 pairs" in lines
    assert "new failures (ok before, not ok now): 1" in lines
    assert "h1 -> h3 ok -> unreachable loss 0% -> 100%" in lines
    assert "FAIL new-failures: 1 pair(s) reachable in the baseline are unreachable or could not be " \
           "measured now, or lose pings (no --max-loss-pct)" in lines
    assert lines[-1] == "verdict: FAIL (1 of 4 gate(s) failed)"
    assert fleet(capsys, "report", "--baseline", old, new, "--allow-new-failures")[0] == 0


def test_baseline_recovery_passes_even_though_the_old_run_was_not_ok(tmp_path, capsys):
    old = saved(tmp_path, "old.json", mesh(NAMES, {("h2", "h1"): {"state": PairState.UNREACHABLE}}))
    new = saved(tmp_path, "new.json", mesh(NAMES))
    code, out, _ = fleet(capsys, "report", "--baseline", old, new)
    assert code == 0
    assert "recovered (not ok before, ok now): 1" in out and "verdict: PASS" in out


def test_baseline_gates_and_json_comparison(tmp_path, capsys):
    # 20 pings a pair: enough replies for a P99 (100), which the saved files carry back
    old = saved(tmp_path, "old.json", mesh(NAMES, rtt=1.0, count=20))
    new = saved(tmp_path, "new.json", mesh(["h1", "h2", "h3", "h4"], {
        ("h1", "h2"): {"rtt": 3.0}, ("h4", "h1"): {"state": PairState.LOSSY, "received": 1}},
        rtt=1.0, count=20))
    code, out, err = fleet(capsys, "report", "--baseline", old, new, "--json", "-",
                           "--max-rtt-increase-pct", "50", "--max-loss-pct", "5", "--max-rtt-ms", "10")
    assert code == 1
    report = json.loads(out)
    assert report["hosts"] == {"added": ["h4"], "removed": []}
    assert report["pairs"] == {"compared": 6, "added": 6, "removed": 0}
    assert report["rtt_ms"]["p99_increase_pct"] == 200.0 and report["rtt_ms"]["p50_increase_pct"] == 0.0
    assert report["rtt_ms"]["largest_increases"]["listed"][0] == {
        "src": "h1", "dst": "h2", "state_before": "ok", "state_after": "ok",
        "loss_pct_before": 0.0, "loss_pct_after": 0.0, "rtt_avg_ms_before": 1.0,
        "rtt_avg_ms_after": 3.0, "rtt_increase_ms": 2.0, "rtt_increase_pct": 200.0}
    gates = {g["name"]: (g["passed"], g["offenders"]) for g in report["gates"]}
    assert report["rtt_ms"]["current"] == {"pairs": 12, "p50": 1.0, "p90": 1.0, "p99": 3.0}
    assert gates == {"max-loss-pct": (False, ["h4 -> h1 95%"]), "max-rtt-ms": (True, []),
                     "max-rtt-increase-pct": (False, ["h1 -> h2 1.000 -> 3.000 ms (+200.0%)"]),
                     "new-failures": (True, []), "hosts-gone": (True, []), "mtu": (True, []),
                     "unmeasured": (True, [])}
    assert report["passed"] is False and report["current"]["file"] == str(new)
    assert "hosts: 1 new (h4), 0 gone (none)" in err and "FAIL max-loss-pct 5" in err
    code, _, _ = fleet(capsys, "report", "--baseline", old, new, "--max-rtt-increase-pct", "250",
                       "--max-loss-pct", "96")
    assert code == 0


def test_gates_without_a_baseline_decide_the_exit_code_and_join_the_json(tmp_path, capsys):
    path = saved(tmp_path, "run.json", mesh(NAMES, {("h3", "h2"): {"rtt": 30.0}}))
    code, out, _ = fleet(capsys, "report", path, "--max-rtt-ms", "20", "--json", "-")
    assert code == 1
    document = json.loads(out)
    assert document["task"] == "mesh" and document["passed"] is False
    assert document["gates"][0]["offenders"] == ["h3 -> h2 30.000 ms"]
    assert fleet(capsys, "report", path, "--max-rtt-ms", "40")[0] == 0
    # not ok, but in limits; its two pairs that could not tell pass only when allowed
    assert fleet(capsys, "report", GOLDEN, "--max-loss-pct", "100")[0] == 1
    assert fleet(capsys, "report", GOLDEN, "--max-loss-pct", "100", "--allow-unmeasured")[0] == 0


def test_report_of_a_real_several_task_run_matches_what_the_run_printed(inprocess_fleet):
    inprocess_fleet.add_host("h1", "172.31.0.11")
    inprocess_fleet.add_host("h2", "172.31.0.12")
    inprocess_fleet.add_unreachable("h3", "172.31.0.13")
    ran = inprocess_fleet.run("setup", "mesh")
    assert ran.code == 1 and [d["task"] for d in ran.report["tasks"]] == ["setup", "mesh"]
    logins = inprocess_fleet.logins()
    shown = inprocess_fleet.cli("report", str(inprocess_fleet.workdir / "report.json"))
    assert shown.code == ran.code and shown.err == ""
    table = shown.out.rstrip("\n")
    assert table.startswith("mesh COULD NOT TELL: 3 hosts, 6 pairs") and table in ran.out
    assert inprocess_fleet.logins() == logins  # no host was asked anything


def test_report_loads_no_ssh_library():
    code = ("import sys\nfrom fleet import cli\n"
            f"assert cli.main(['report', {str(GOLDEN)!r}]) == 1\n"
            "print(' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=True, cwd=Path(__file__).resolve().parents[2])
    loaded = set(done.stdout.split())
    assert "fleet.mesh.saved" in loaded
    assert not {"asyncssh", "fleet.ssh.transport", "fleet.tasks.setup"} & loaded


def test_report_writes_the_report_files_of_a_saved_mesh(tmp_path, capsys):
    from junitparser import JUnitXml
    from prometheus_client.parser import text_string_to_metric_families

    junit, prom, heat = tmp_path / "mesh.xml", tmp_path / "mesh.prom", tmp_path / "mesh.svg"
    code, _, err = fleet(capsys, "report", GOLDEN, "--junit", junit, "--prometheus", prom,
                         "--prometheus-pairs", "--heatmap", heat)
    assert code == 1, err
    suite = next(iter(JUnitXml.fromfile(str(junit))))
    cases = {case.name: case for case in suite}
    assert len(cases) == 7 and suite.name == "fleet.mesh"  # six pairs and the verdict
    assert cases["verdict"].result[0].message.startswith("NOT OK")
    assert cases["h1 -> h3"].result and cases["h1 -> h2"].result == []
    up = {(s.labels["src"], s.labels["dst"]): s.value
          for family in text_string_to_metric_families(prom.read_text())
          if family.name == "fleet_mesh_pair_up" for s in family.samples}
    assert up[("h1", "h3")] == 0 and up[("h1", "h2")] == 1
    fleet(capsys, "report", GOLDEN, "--prometheus", prom)  # per host by default
    names = {family.name for family in text_string_to_metric_families(prom.read_text())}
    assert "fleet_mesh_host_pairs_ok" in names and "fleet_mesh_pair_up" not in names
    assert heat.read_text().startswith("<svg") or "<svg" in heat.read_text()[:200]


def test_report_files_are_checked_before_anything_is_written(tmp_path, capsys):
    code, _, err = fleet(capsys, "report", GOLDEN, "--heatmap", tmp_path / "mesh.png")
    assert code == 2 and "--heatmap" in err
    path = saved(tmp_path, "run.json", mesh(NAMES))
    before = path.read_text()
    code, _, err = fleet(capsys, "report", path, "--junit", path)
    assert code == 2 and "--junit" in err and path.read_text() == before


def test_a_comparison_states_each_runs_own_verdict_an_mtu_black_hole_included(tmp_path, capsys):
    from dataclasses import replace

    from fleet.mesh.model import MTU_FAILED, MTU_OK

    good = mesh(NAMES)
    holed = mesh(NAMES)
    holed.params = replace(holed.params, mtu_size=1480)
    for row in range(holed.pair_count):  # every small ping answered, h3's full-size ones not
        holed.columns.mtu[row] = MTU_FAILED if 2 in (holed.columns.src[row],
                                                     holed.columns.dst[row]) else MTU_OK
    old, new = saved(tmp_path, "old.json", good), saved(tmp_path, "new.json", holed)
    assert fleet(capsys, "report", new)[0] == 1  # the run's own verdict: mtu-blackhole
    code, out, _ = fleet(capsys, "report", "--baseline", old, new, "--json", tmp_path / "cmp.json")
    assert f"{new}: NOT OK" in out and f"{old}: ALL OK" in out, out
    compared = json.loads((tmp_path / "cmp.json").read_text())
    assert (compared["baseline"]["all_ok"], compared["current"]["all_ok"]) == (True, False)
