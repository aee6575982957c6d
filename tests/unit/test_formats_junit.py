"""JUnit XML from synthetic reports, read back by junitparser (an independent reader)."""

from formats_meshes import (
    ERROR,
    LOSSY,
    UNREACHABLE,
    Finding,
    hosts_outcome,
    mesh_of,
    mesh_outcome,
)
from junitparser import Error, Failure, JUnitXml, Skipped

from fleet.formats import write_artifacts


def suites(path):
    return {suite.name: suite for suite in JUnitXml.fromfile(str(path))}


def cases(suite):
    return {case.name: case for case in suite}


def test_a_case_per_directed_pair_and_per_host_with_the_failures_numbers(tmp_path):
    mesh = mesh_of(["h1", "h2", "h3"], {("h1", "h3"): UNREACHABLE, ("h3", "h2"): ERROR})
    finding = Finding("asymmetric", ("h1", "h3"), "h3 -> h1 ok but h1 -> h3 unreachable")
    other = Finding("host", ("h9",), "about another host")
    outcomes = [hosts_outcome("setup", {"h1": "changed", "h2": "failed", "h3": "interrupted"}),
                mesh_outcome(mesh, findings=(finding, other))]
    target = tmp_path / "out.xml"
    assert write_artifacts(outcomes, junit=target) == [target]
    found = suites(target)
    assert sorted(found) == ["fleet.mesh", "fleet.setup"]

    setup = found["fleet.setup"]
    assert (setup.tests, setup.failures, setup.skipped) == (3, 1, 1)
    by_host = cases(setup)
    assert by_host["h1"].is_passed and by_host["h1"].classname == "fleet.setup"
    (failure,) = by_host["h2"].result
    assert isinstance(failure, Failure) and failure.type == "unreachable"
    assert "cannot connect to 10.0.0.1:22" in failure.message
    assert isinstance(by_host["h3"].result[0], Skipped)

    pairs = found["fleet.mesh"]
    # six pairs and the run's verdict, which fails with them
    assert (pairs.tests, pairs.failures, pairs.errors) == (7, 2, 1)
    by_pair = cases(pairs)
    assert sorted(by_pair) == ["h1 -> h2", "h1 -> h3", "h2 -> h1", "h2 -> h3", "h3 -> h1", "h3 -> h2",
                               "verdict"]
    (verdict,) = by_pair["verdict"].result
    assert isinstance(verdict, Failure) and verdict.type == "not-ok"
    assert verdict.message.startswith("NOT OK: asymmetric")
    assert by_pair["h2 -> h1"].is_passed
    (lost,) = by_pair["h1 -> h3"].result
    assert isinstance(lost, Failure) and lost.type == "unreachable"
    assert lost.message == "h1 -> h3: unreachable, 100% loss"
    for line in ("state: unreachable", "sent: 3", "received: 0", "loss: 100%",
                 "finding (asymmetric): h3 -> h1 ok but h1 -> h3 unreachable"):
        assert line in lost.text
    assert "another host" not in lost.text
    (error,) = by_pair["h3 -> h2"].result
    assert isinstance(error, Error) and "could not tell" in error.message
    assert "error: source failed: cannot connect" in error.text


def test_hostile_host_names_are_escaped_and_read_back_as_they_were(tmp_path):
    names = ['<b>&"x\'', "evil]]>\x1b[31m", "plain"]
    mesh = mesh_of(names, {(names[0], names[1]): UNREACHABLE})
    target = tmp_path / "out.xml"
    write_artifacts([mesh_outcome(mesh)], junit=target)
    by_pair = cases(suites(target)["fleet.mesh"])
    assert '<b>&"x\' -> plain' in by_pair
    # XML cannot carry ESC: it is replaced, the rest of the name is kept
    assert '<b>&"x\' -> evil]]>\ufffd[31m' in by_pair
    assert len(by_pair) == 7  # six pairs and the verdict


def test_no_file_for_tasks_it_has_nothing_to_say_about(tmp_path):
    from types import SimpleNamespace

    target = tmp_path / "out.xml"
    assert write_artifacts([SimpleNamespace(task="custom", report=object())], junit=target) == []
    assert not target.exists()


def test_a_pair_whose_mtu_check_failed_is_a_failure_that_says_so(tmp_path):
    mesh = mesh_of(["h1", "h2", "h3"], mtu={("h1", "h2"): False, ("h2", "h1"): False}, underlay=True)
    target = tmp_path / "out.xml"
    write_artifacts([mesh_outcome(mesh)], junit=target)
    suite = suites(target)["fleet.mesh"]
    assert (suite.tests, suite.failures, suite.errors) == (7, 3, 0)
    by_pair = cases(suite)
    (failure,) = by_pair["h1 -> h2"].result
    assert isinstance(failure, Failure) and failure.type == "mtu"
    assert "mtu 1480 failed" in failure.message
    assert "mtu 1480 (don't fragment): failed" in failure.text
    assert "underlay (IPv4 ping of the peer's tunnel endpoint): ok, 0% loss" in failure.text
    assert by_pair["h1 -> h3"].is_passed
    (verdict,) = by_pair["verdict"].result
    assert isinstance(verdict, Failure) and "mtu-blackhole" in verdict.message


def test_findings_are_attached_to_the_pairs_whose_measurement_they_explain(tmp_path):
    # h2's tunnel is blocked (its pairs unreachable, IPv4 fine); h3 -> h1 fails only the MTU check
    unreachable = {(a, b): UNREACHABLE for a in ("h1", "h2", "h3") for b in ("h1", "h2", "h3")
                   if a != b and "h2" in (a, b)}
    mesh = mesh_of(["h1", "h2", "h3"], unreachable, mtu={("h3", "h1"): False}, underlay=True)
    target = tmp_path / "out.xml"
    write_artifacts([mesh_outcome(mesh)], junit=target)
    by_pair = cases(suites(target)["fleet.mesh"])
    (blocked,) = by_pair["h2 -> h3"].result
    assert "finding (tunnel-blocked)" in blocked.text
    assert "mtu-blackhole" not in blocked.text  # h3's MTU finding is not about this pair's failure
    (mtu,) = by_pair["h3 -> h1"].result
    assert "finding (mtu-blackhole)" in mtu.text and "tunnel-blocked" not in mtu.text


def test_a_run_that_verified_nothing_is_not_a_green_suite(tmp_path):
    for mesh in (mesh_of(["h1"]), mesh_of(["h1", "h2", "h3"], skip={("h1", "h2")})):
        target = tmp_path / "out.xml"
        write_artifacts([mesh_outcome(mesh)], junit=target)
        suite = suites(target)["fleet.mesh"]
        assert suite.failures == 0 and suite.errors == 1
        (verdict,) = cases(suite)["verdict"].result
        assert isinstance(verdict, Error) and verdict.message.startswith("COULD NOT TELL")


def test_cases_are_grouped_by_source_host_and_timed_by_their_probes(tmp_path):
    mesh = mesh_of(["h1", "h2", "h3"], {("h1", "h3"): UNREACHABLE, ("h2", "h3"): LOSSY,
                                        ("h3", "h1"): ERROR})
    target = tmp_path / "out.xml"
    write_artifacts([mesh_outcome(mesh)], junit=target)
    suite = suites(target)["fleet.mesh"]
    classes = {case.name: case.classname for case in suite}
    assert classes == {"verdict": "fleet.mesh", "h1 -> h2": "fleet.mesh.h1",
                       "h1 -> h3": "fleet.mesh.h1", "h2 -> h1": "fleet.mesh.h2",
                       "h2 -> h3": "fleet.mesh.h2", "h3 -> h1": "fleet.mesh.h3",
                       "h3 -> h2": "fleet.mesh.h3"}
    times = {case.name: case.time for case in suite}
    timeout = mesh.params.timeout
    assert times["h1 -> h2"] == 0.0002  # every probe answered: the average RTT
    assert times["h1 -> h3"] == timeout  # every probe waited for in vain
    assert times["h2 -> h3"] == round((2 * 0.0004 + timeout) / 3, 6)  # two replies, one lost
    assert times["h3 -> h1"] == 0  # no probe ran
    assert times["verdict"] == suite.time == 2.5  # the run as a whole
